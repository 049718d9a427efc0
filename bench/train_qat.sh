#!/usr/bin/env bash
# Low-bit training from the start against post-training quantization (docs/BENCHMARKS.md
# "Training from scratch"): a ref-s-shaped LLaMA (dim 128, 4 layers, 4/2 heads, ref-s's 4096-token
# SentencePiece vocabulary) trained on the first 90 % of tinyshakespeare — in fp32, and
# quantization-aware with its block projections in ternary (BitNet b1.58), int4 and int2 — with
# the same steps, tokens, learning rate and seed. The fp32 model is then quantized afterwards to
# the same formats (RTN, and GPTQ calibrated on the training text). Every file is scored by
# `lowbit perplexity` on the last 10 % of the text, which no run trained on.
# STEPS (default 1200) x 8 windows x 128 tokens per run.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${LOWBIT_SHARED:-$(cd .. && pwd)/shared}"
LB=build/lowbit
TMP="${TMPDIR:-/tmp}/lowbit-train-qat"
STEPS="${STEPS:-1200}"
mkdir -p "$TMP"

# The split: a line boundary near 90 % of the characters.
SRC="$SHARED/data/tinyshakespeare/input.txt"
lines=$(wc -l < "$SRC")
cut_at=$((lines * 9 / 10))
head -n "$cut_at" "$SRC" > "$TMP/train.txt"
tail -n +"$((cut_at + 1))" "$SRC" > "$TMP/test.txt"

TRAIN=(--tokenizer "$SHARED/models/ref-s/tokenizer.model" -d "$TMP/train.txt" --dim 128 --layers 4 --heads 4
       --kv-heads 2 --hidden 352 -c 128 -b 8 --steps "$STEPS" --lr 2e-3 --warmup 50 --holdout 0.02 --seed 0
       --log-every 200)
ppl() { $LB perplexity --json -m "$1" -f "$TMP/test.txt" -c 128 | sed 's/.*"ppl":\([0-9.e+-]*\).*/\1/' | xargs printf "%.2f"; }
bytes() { stat -c %s "$1"; }

echo "| model | weights of the block projections | file bytes | test ppl | train tok/s |"
echo "|---|---|---|---|---|"
for w in f32 ternary:g64 int4:g32 int2:g32:asym; do
  d="$TMP/${w//:/_}"
  tps=$($LB train "${TRAIN[@]}" -w "$w" -o "$d" --json 2> "$d.log" | sed 's/.*"tok_per_s":\([0-9.e+-]*\).*/\1/')
  echo "| trained $w | $w | $(bytes "$d/model.lowbit") | $(ppl "$d/model.lowbit") | ${tps%.*} |"
done
F32="$TMP/f32"
for r in rtn:ternary:g64 gptq:ternary:g64 rtn:int4:g32 gptq:int4:g32 rtn:int2:g32:asym gptq:int2:g32:asym; do
  out="$TMP/ptq_${r//:/_}.lowbit"
  $LB quantize -m "$F32/model.lowbit" -r "$r" --tensor "embed_tokens=f16" --tensor "lm_head=f16" \
    --calib "$TMP/train.txt" -o "$out" > /dev/null 2>&1
  echo "| fp32, then $r | ${r#*:} | $(bytes "$out") | $(ppl "$out") | |"
done
