#!/usr/bin/env bash
# End-to-end test of `lowbit serve` with the official OpenAI Node SDK: starts the server on a free
# port, runs openai_sdk_test.mjs against it, then sends SIGTERM and checks that the server drains
# and exits 0. Every wait is bounded. Usage: run_sdk_test.sh LOWBIT_BIN
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$1"
shared="${LOWBIT_SHARED:-$here/../../../../shared}"
model="$shared/models/ref-s"
[ -d "$here/node_modules/openai" ] || { echo "openai SDK missing: run scripts/install-deps.sh" >&2; exit 1; }
work="$(mktemp -d)"
server_pid=""
cleanup() { [ -n "$server_pid" ] && kill -9 "$server_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

prompt="The history of the city"
n=16
expected="$("$bin" generate -m "$model" -p "$prompt" -n "$n" --temp 0 --json --threads 2)"
"$bin" serve -m "$model" --port 0 --api-key test-key --alias ref-s --parallel 4 --threads 2 2>"$work/log" &
server_pid=$!
port=""
for _ in $(seq 1 600); do  # up to 60 s to load and listen
  port="$(sed -n 's|.*on http://127.0.0.1:\([0-9]*\).*|\1|p' "$work/log" | head -1)"
  [ -n "$port" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/log" >&2; echo "server exited early" >&2; exit 1; }
  sleep 0.1
done
[ -n "$port" ] || { cat "$work/log" >&2; echo "server did not start listening" >&2; exit 1; }

timeout 180 node "$here/openai_sdk_test.mjs" "http://127.0.0.1:$port/v1" test-key \
  "$(printf '%s' "$expected" | node -e 'const j=JSON.parse(require("fs").readFileSync(0,"utf8")); process.stdout.write(JSON.stringify({prompt: process.argv[1], n: Number(process.argv[2]), text: j.text}))' "$prompt" "$n")"

kill -TERM "$server_pid"
status=0
for _ in $(seq 1 300); do  # up to 30 s to drain and exit
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$server_pid" 2>/dev/null; then cat "$work/log" >&2; echo "server ignored SIGTERM" >&2; exit 1; fi
wait "$server_pid" || status=$?
server_pid=""
grep -q "stopped after" "$work/log" || { cat "$work/log" >&2; echo "no clean shutdown line" >&2; exit 1; }
[ "$status" -eq 0 ] || { cat "$work/log" >&2; echo "server exit status $status" >&2; exit 1; }
echo "serve + OpenAI SDK: all checks passed, clean SIGTERM shutdown"
