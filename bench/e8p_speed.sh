#!/usr/bin/env bash
# Speed of the 2-bit formats at Llama-2-7B layer shapes (docs/BENCHMARKS.md, "The E8P kernel"):
# a 2-layer synthetic model (`lowbit synth`), quantized by lowbit to int4:g128, e8p:g64 and
# int2:g64:asym (every linear and lm_head; e8p also with LOWBIT_E8P_EXPAND=1, its 4-bit look-up
# path), and by llama.cpp's llama-quantize to Q4_0 and IQ2_XXS
# (importance matrix from llama-imatrix on the calibration text) from an F16 GGUF of the same
# weights. lowbit bench and llama-bench alternate, ROUNDS times, 2 threads, -p 64 -n 32.
# Needs build/lowbit and the peer build (../shared/tools/build-llamacpp-peer.sh DIR; pass
# DIR/build/bin as $LLAMACPP_BIN). Run on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${LOWBIT_SHARED:-$(cd .. && pwd)/shared}"
LB=build/lowbit
TMP="${TMPDIR:-/tmp}/lowbit-synth7b"
TOK="$SHARED/models/llama2-tokenizer/tokenizer.model"
LLAMACPP_BIN="${LLAMACPP_BIN:-/root/llamacpp-peer/build/bin}"
ROUNDS="${ROUNDS:-3}"
mkdir -p "$TMP"
[ -f "$TMP/model/model.safetensors" ] || $LB synth --out "$TMP/model" --layers 2 > /dev/null
for R in rtn:int4:g128 rtn:e8p:g64 rtn:int2:g64:asym; do
  f="$TMP/${R//:/_}.lowbit"
  [ -f "$f" ] || $LB quantize -m "$TMP/model" -o "$f" -r "$R" --tensor "lm_head=$R" --tokenizer "$TOK" > /dev/null
done
if [ -x "$LLAMACPP_BIN/llama-quantize" ]; then
  [ -f "$TMP/f16.gguf" ] || $LB export -m "$TMP/model" --format gguf --type F16 --tokenizer "$TOK" -o "$TMP/f16.gguf" > /dev/null
  head -c 200000 "$SHARED/data/calibration/wiki.utf8" > "$TMP/calib.txt"
  [ -f "$TMP/imatrix.dat" ] || "$LLAMACPP_BIN/llama-imatrix" -m "$TMP/f16.gguf" -f "$TMP/calib.txt" -c 256 --chunks 8 -t 2 -o "$TMP/imatrix.dat" > /dev/null 2>&1
  for T in Q4_0 IQ2_XXS; do
    [ -f "$TMP/$T.gguf" ] || "$LLAMACPP_BIN/llama-quantize" --imatrix "$TMP/imatrix.dat" "$TMP/f16.gguf" "$TMP/$T.gguf" "$T" 2 > /dev/null 2>&1
  done
fi
uptime
ls -l "$TMP"/*.lowbit "$TMP"/*.gguf 2> /dev/null || true
for round in $(seq "$ROUNDS"); do
  for R in rtn:int4:g128 rtn:e8p:g64 rtn:int2:g64:asym; do
    echo "== round $round lowbit $R"
    $LB bench -m "$TMP/${R//:/_}.lowbit" -p 64 -n 32 -r 1 --threads 2 --json
  done
  echo "== round $round lowbit rtn:e8p:g64 expanded (LOWBIT_E8P_EXPAND=1)"
  LOWBIT_E8P_EXPAND=1 $LB bench -m "$TMP/rtn_e8p_g64.lowbit" -p 64 -n 32 -r 1 --threads 2 --json
  for T in Q4_0 IQ2_XXS; do
    [ -f "$TMP/$T.gguf" ] || continue
    echo "== round $round llama.cpp $T"
    "$LLAMACPP_BIN/llama-bench" -m "$TMP/$T.gguf" -p 64 -n 32 -t 2 -r 1 -o json 2> /dev/null | grep -E '"(n_prompt|n_gen|avg_ts)"'
  done
done
uptime
