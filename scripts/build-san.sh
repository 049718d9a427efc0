#!/usr/bin/env bash
# Configures and builds a sanitizer tree: clang++, -DLOWBIT_SANITIZE=ON (ASan + UBSan, every
# UBSan finding fatal, LeakSanitizer), no micro-benchmarks. Arguments are ninja targets (default:
# everything).
#   LOWBIT_SAN_DIR        the tree (default build-san)
#   LOWBIT_FUZZ_COVERAGE  OFF (default): the test suite's tree, libraries not coverage-instrumented
#                         and no fuzz targets (what scripts/test.sh runs ctest on);
#                         ON: the fuzz targets of fuzz/ with all code instrumented for libFuzzer's
#                         coverage guidance (scripts/fuzz.sh uses LOWBIT_SAN_DIR=build-fuzz).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${LOWBIT_SAN_DIR:-build-san}"
if [ ! -f "$dir/build.ninja" ]; then
  # -O1 with line tables only: symbolized stacks, in far less compile time than -O2 -g.
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=None -DCMAKE_CXX_FLAGS="-O1 -gline-tables-only" \
    -DCMAKE_CXX_COMPILER=clang++ \
    -DLOWBIT_SANITIZE=ON -DLOWBIT_FUZZ="${LOWBIT_FUZZ_COVERAGE:-OFF}" -DLOWBIT_FUZZ_COVERAGE=ON \
    -DLOWBIT_BUILD_BENCH=OFF >/dev/null
fi
ninja -C "$dir" -j"$(nproc)" "$@"
