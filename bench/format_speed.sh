#!/usr/bin/env bash
# ref-m decode/prefill speed per format with 2 threads (docs/BENCHMARKS.md, "ref-m: speed per
# format"). Needs build/lowbit; run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${LOWBIT_SHARED:-$(cd .. && pwd)/shared}"
LB=build/lowbit
TMP="${TMPDIR:-/tmp}/lowbit-format-speed"
mkdir -p "$TMP"
uptime
echo "== fp32"
$LB bench -m "$SHARED/models/ref-m" -p 128 -n 64 -r 3 --threads 2 --json
for R in rtn:int8:g128 rtn:int6:g128 rtn:int5:g128 rtn:int4:g128 rtn:int4:g32 rtn:nf4:g64 rtn:nf4:g64:dq \
         rtn:fp4:g32 rtn:fp8:gc rtn:int3:g128 rtn:int2:g64:asym rtn:ternary:g64; do
  $LB quantize -m "$SHARED/models/ref-m" -o "$TMP/m.lowbit" -r "$R" > /dev/null
  echo "== $R"
  $LB bench -m "$TMP/m.lowbit" -p 128 -n 64 -r 3 --threads 2 --json
done
uptime
