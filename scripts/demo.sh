#!/usr/bin/env bash
# README command 1: installs dependencies, builds, and runs the main job on the bundled default
# model (ref-m from ../shared): quantize it (GPTQ int4, groups of 128, calibrated on
# ../shared/data/calibration), then report the quality of the result against the original
# (wikitext-2 perplexity of both, KL-divergence, top-1 agreement), its speed, and a sample.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
SHARED="${LOWBIT_SHARED:-$(cd .. && pwd)/shared}"
MODEL="$SHARED/models/ref-m"
TEXT="$SHARED/data/wikitext-2-raw/wiki.test.raw"
RECIPE="${LOWBIT_RECIPE:-gptq:int4:g128}"
OUT=out/ref-m.lowbit
LB=build/lowbit
mkdir -p out

echo "== quantize $MODEL with $RECIPE"
LOWBIT_SHARED="$SHARED" $LB quantize --model "$MODEL" --recipe "$RECIPE" --out "$OUT"
echo
echo "== quality against the original: wikitext-2 test (ctx 256, first 100000 tokens)"
$LB eval --model "$OUT" --reference "$MODEL" --file "$TEXT" --ctx 256 --max-tokens 100000
echo
echo "== speed (2 threads)"
echo "-- original (fp32)"
$LB bench --model "$MODEL" -p 128 -n 64 --threads 2 --no-bandwidth
echo "-- quantized ($RECIPE)"
$LB bench --model "$OUT" -p 128 -n 64 --threads 2
echo
echo "== greedy sample from the quantized model"
$LB generate --model "$OUT" --prompt "The meaning of life is" -n 48 --temp 0
