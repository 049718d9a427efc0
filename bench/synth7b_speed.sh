#!/usr/bin/env bash
# The 2-thread speed table of docs/BENCHMARKS.md ("2 threads on a quiet machine"): a 2-layer model
# with Llama-2-7B layer shapes, lowbit per format, and llama.cpp's Q4_0 on the very same codes.
# Needs build/lowbit and, for the llama.cpp row, the peer build
# (../shared/tools/build-llamacpp-peer.sh DIR; pass DIR/build/bin as $LLAMACPP_BIN).
# Run it on a quiet machine: speed numbers taken beside other jobs mean nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${LOWBIT_SHARED:-$(cd .. && pwd)/shared}"
LB=build/lowbit
TMP="${TMPDIR:-/tmp}/lowbit-synth7b"
TOK="$SHARED/models/llama2-tokenizer/tokenizer.model"
LLAMACPP_BIN="${LLAMACPP_BIN:-/root/llamacpp-peer/build/bin}"
mkdir -p "$TMP"
[ -f "$TMP/model/model.safetensors" ] || $LB synth --out "$TMP/model" --layers 2
uptime
for R in rtn:int4:g32 rtn:int4:g128 rtn:int8:g128 rtn:nf4:g64; do
  $LB quantize -m "$TMP/model" -o "$TMP/s7.lowbit" -r "$R" --tensor "lm_head=$R" --tokenizer "$TOK" > /dev/null
  echo "== lowbit $R"
  $LB bench -m "$TMP/s7.lowbit" -p 64 -n 32 -r 3 --threads 2 --json
  if [ "$R" = rtn:int4:g32 ] && [ -x "$LLAMACPP_BIN/llama-bench" ]; then
    # No --type: every tensor keeps its exact Q4_0 codes (an explicit Q4_0 would lift lm_head to Q6_K).
    $LB export -m "$TMP/s7.lowbit" --format gguf -o "$TMP/s7-q4.gguf" > /dev/null
    echo "== llama.cpp Q4_0 (same codes)"
    "$LLAMACPP_BIN/llama-bench" -m "$TMP/s7-q4.gguf" -p 64 -n 32 -t 2 -r 3 -o json 2>/dev/null
    echo "== lowbit $R again"
    $LB bench -m "$TMP/s7.lowbit" -p 64 -n 32 -r 3 --threads 2 --json
  fi
done
uptime
