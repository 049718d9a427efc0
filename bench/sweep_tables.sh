#!/usr/bin/env bash
# Regenerates the calibrated-quantization sweeps of docs/BENCHMARKS.md ("Calibrated PTQ"):
#   ref-m:       wikitext-2 raw test, ctx 256, first 32768 tokens; calibration = the default
#                ../shared/data/calibration (128 windows x 256 tokens)
#   stories260K: TinyStories text, calibrated on the first half of calibration/tiny.utf8 and
#                evaluated on the second half (ctx 256)
# Usage: bash bench/sweep_tables.sh [OUT_DIR]   (default out/sweeps; needs build/lowbit)
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${LOWBIT_SHARED:-$(cd .. && pwd)/shared}"
export LOWBIT_SHARED="$SHARED"
OUT="${1:-out/sweeps}"
LB="${LOWBIT_BIN:-build/lowbit}"
mkdir -p "$OUT"

$LB sweep -m "$SHARED/models/ref-m" -f "$SHARED/data/wikitext-2-raw/wiki.test.raw" --ctx 256 --max-tokens 32768 \
  --recipes rtn:int8:g128,rtn:int4:g128,imatrix:int4:g128,awq:int4:g128,gptq:int4:g128,rtn:nf4:g64,gptq:nf4:g64,rtn:int3:g128,imatrix:int3:g128,awq:int3:g128,gptq:int3:g128,rtn:int2:g64:asym,gptq:int2:g64:asym \
  -o "$OUT/ref-m"

SPLIT="$OUT/tiny-split"
mkdir -p "$SPLIT"
python3 - "$SHARED/data/calibration/tiny.utf8" "$SPLIT" <<'PY'
import sys
text = open(sys.argv[1], encoding="utf-8").read()
cut = text.index("\n", len(text) // 2) + 1
open(sys.argv[2] + "/calib.txt", "w", encoding="utf-8").write(text[:cut])
open(sys.argv[2] + "/eval.txt", "w", encoding="utf-8").write(text[cut:])
PY
$LB sweep -m "$SHARED/models/stories260K/stories260K.bin" -f "$SPLIT/eval.txt" --ctx 256 \
  --calib "$SPLIT/calib.txt" --calib-len 256 \
  --recipes rtn:int8:g32,rtn:int4:g32,imatrix:int4:g32,awq:int4:g32,gptq:int4:g32,rtn:int3:g32,imatrix:int3:g32,awq:int3:g32,gptq:int3:g32,rtn:int2:g32:asym,gptq:int2:g32:asym \
  -o "$OUT/stories260K"
