#!/usr/bin/env bash
# The decode cost of low-rank error correction (docs/BENCHMARKS.md, "Low-rank error
# compensation"): a 2-layer model with Llama-2-7B layer shapes, rtn:int4:g128 with and without
# `:lr32` (rank 32 on every block linear), `lowbit bench` alternating between the two files.
# PAIRS: alternating pairs (default 3). Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${LOWBIT_SHARED:-$(cd .. && pwd)/shared}"
export LOWBIT_SHARED="$SHARED"
LB=build/lowbit
TMP="${TMPDIR:-/tmp}/lowbit-synth7b"
TOK="$SHARED/models/llama2-tokenizer/tokenizer.model"
PAIRS="${PAIRS:-3}"
mkdir -p "$TMP"
[ -f "$TMP/model/model.safetensors" ] || $LB synth --out "$TMP/model" --layers 2
for R in rtn:int4:g128 rtn:int4:g128:lr32; do
  F="$TMP/${R//:/_}.lowbit"
  [ -f "$F" ] || $LB quantize -m "$TMP/model" -o "$F" -r "$R" --tensor "lm_head=rtn:int4:g128" --tokenizer "$TOK" > /dev/null
done
uptime
for i in $(seq "$PAIRS"); do
  for R in rtn:int4:g128 rtn:int4:g128:lr32; do
    echo "== $R (pair $i)"
    $LB bench -m "$TMP/${R//:/_}.lowbit" -p 64 -n 64 -r 3 --threads 2 --json
  done
done
uptime
