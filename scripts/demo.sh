#!/usr/bin/env bash
# README command 1: installs dependencies, builds, and runs the main job on the bundled default
# model (ref-m from ../shared): model info, a greedy sample, wikitext-2 perplexity, and speed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
SHARED="${LOWBIT_SHARED:-$(cd .. && pwd)/shared}"
MODEL="$SHARED/models/ref-m"
TEXT="$SHARED/data/wikitext-2-raw/wiki.test.raw"
LB=build/lowbit

echo "== model: $MODEL"
$LB info --model "$MODEL" | head -20
echo
echo "== greedy sample"
$LB generate --model "$MODEL" --prompt "The meaning of life is" -n 48 --temp 0
echo
echo "== perplexity on wikitext-2 test (ctx 256, first 100000 tokens)"
$LB perplexity --model "$MODEL" --file "$TEXT" --ctx 256 --max-tokens 100000
echo
echo "== speed (2 threads)"
$LB bench --model "$MODEL" -p 128 -n 64 --threads 2
