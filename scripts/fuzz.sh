#!/usr/bin/env bash
# scripts/fuzz.sh [--seconds N] [--build-only] [--replay-only] [--no-build] [targets...]
#
# Builds build-fuzz/ (scripts/build-san.sh with LOWBIT_FUZZ_COVERAGE=ON: clang, ASan + UBSan,
# all code coverage-instrumented for libFuzzer; LOWBIT_SAN_DIR picks another tree) and, for each target
# (default: every fuzz/<target>.cpp), replays fuzz/corpus/<target>/ and fuzz/regressions/<target>/
# once, then fuzzes for N seconds (default 25) starting from them (--no-build: use the binaries
# as they are). New inputs go to a fresh scratch corpus outside the repository; crash, leak,
# timeout and OOM inputs are saved under $LOWBIT_FUZZ_ARTIFACTS (default: a new directory in
# $TMPDIR) and make the script fail.
# fuzz/README.md says how to keep a crash as a regression input.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=25
build_only=0
replay_only=0
build=1
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --build-only) build_only=1; shift ;;
    --replay-only) replay_only=1; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/*.cpp; do
    t="$(basename "$f" .cpp)"
    [ "$t" = fuzz_util ] || targets+=("$t")
  done
fi

export LOWBIT_SAN_DIR="${LOWBIT_SAN_DIR:-build-fuzz}" LOWBIT_FUZZ_COVERAGE=ON
[ "$build" = 1 ] && bash scripts/build-san.sh "${targets[@]/#/fuzz_}"
[ "$build_only" = 1 ] && exit 0

source scripts/sanitizer-env.sh
artifacts="${LOWBIT_FUZZ_ARTIFACTS:-$(mktemp -d "${TMPDIR:-/tmp}/lowbit-fuzz-artifacts.XXXXXX")}"
mkdir -p "$artifacts"
# Resource caps: a single allocation above malloc_limit_mb (a size read from the input and not
# checked) or a process above rss_limit_mb is a finding, as is one input running over 10 s.
limits=(-rss_limit_mb=2560 -malloc_limit_mb=1024 -timeout=10)
failed=()
total_start=$SECONDS
for t in "${targets[@]}"; do
  bin="$LOWBIT_SAN_DIR/fuzz/fuzz_$t"
  dirs=(fuzz/corpus/"$t")
  [ -d fuzz/regressions/"$t" ] && dirs+=(fuzz/regressions/"$t")
  log="$artifacts/$t.log"
  start=$SECONDS
  if ! "$bin" "${limits[@]}" -runs=0 -artifact_prefix="$artifacts/$t-" "${dirs[@]}" >"$log" 2>&1; then
    echo "fuzz.sh: $t: replaying the corpus FAILED (log: $log)" >&2
    tail -n 40 "$log" >&2
    failed+=("$t")
    continue
  fi
  if [ "$replay_only" = 0 ] && [ "$seconds" -gt 0 ]; then
    scratch="$(mktemp -d "${TMPDIR:-/tmp}/lowbit-fuzz-$t.XXXXXX")"
    if ! "$bin" "${limits[@]}" -max_total_time="$seconds" -print_final_stats=1 \
         -artifact_prefix="$artifacts/$t-" "$scratch" "${dirs[@]}" >>"$log" 2>&1; then
      echo "fuzz.sh: $t: fuzzing FAILED (log: $log)" >&2
      tail -n 40 "$log" >&2
      failed+=("$t")
      rm -rf "$scratch"
      continue
    fi
    rm -rf "$scratch"
  fi
  runs="$(grep -o '^Done [0-9]* runs' "$log" | tail -n 1 | grep -o '[0-9][0-9]*' || echo 0)"
  echo "fuzz.sh: $t: ok ($((SECONDS - start)) s, $runs executions)"
done
echo "fuzz.sh: ${#targets[@]} targets in $((SECONDS - total_start)) s; logs in $artifacts"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAILED: ${failed[*]} (crash inputs: $artifacts)" >&2
  exit 1
fi
