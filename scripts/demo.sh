#!/usr/bin/env bash
# README command 1: installs dependencies, builds, and runs the main job on the bundled default
# model (ref-m from ../shared): quantize it (RTN int4, groups of 128), then report the quality of
# the result against the original (wikitext-2 perplexity), its speed, and a generated sample.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
SHARED="${LOWBIT_SHARED:-$(cd .. && pwd)/shared}"
MODEL="$SHARED/models/ref-m"
TEXT="$SHARED/data/wikitext-2-raw/wiki.test.raw"
RECIPE="${LOWBIT_RECIPE:-rtn:int4:g128}"
OUT=out/ref-m.lowbit
LB=build/lowbit
mkdir -p out

echo "== quantize $MODEL with $RECIPE"
$LB quantize --model "$MODEL" --recipe "$RECIPE" --out "$OUT"
echo
echo "== quality: wikitext-2 test perplexity (ctx 256, first 100000 tokens)"
echo "-- original (fp32)"
$LB perplexity --model "$MODEL" --file "$TEXT" --ctx 256 --max-tokens 100000
echo "-- quantized ($RECIPE)"
$LB perplexity --model "$OUT" --file "$TEXT" --ctx 256 --max-tokens 100000
echo
echo "== speed (2 threads)"
echo "-- original (fp32)"
$LB bench --model "$MODEL" -p 128 -n 64 --threads 2 --no-bandwidth
echo "-- quantized ($RECIPE)"
$LB bench --model "$OUT" -p 128 -n 64 --threads 2
echo
echo "== greedy sample from the quantized model"
$LB generate --model "$OUT" --prompt "The meaning of life is" -n 48 --temp 0
