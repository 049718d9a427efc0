#!/usr/bin/env bash
# Training throughput side by side: lowbit finetune (QLoRA: LoRA r16 on all linears of an NF4
# base; and LoRA on the fp32 base) against llama.cpp's llama-finetune (full fp32 fine-tuning,
# AdamW) on the same model, text and sequence length, same thread count, one after the other.
#
# Usage: bench/finetune_vs_llamacpp.sh MODEL_DIR TEXT [CTX] [PEER_BIN_DIR] [WORK_DIR]
#   MODEL_DIR   an HF model directory (exported to F32 GGUF for llama.cpp, NF4 .lowbit for QLoRA)
#   TEXT        training text (both tools tokenize it with the model's tokenizer)
# Prints one line per run: tool, base, batch, tokens trained, seconds, tokens/s.
# llama-finetune reports whole seconds ("t=MM:SS") for its training epoch; its tokens are
# datapoints × ctx (windows of ctx tokens every ctx/2). lowbit's are the tokens of its steps.
set -euo pipefail
MODEL=$1 TEXT=$2 CTX=${3:-256} PEER=${4:-$HOME/llamacpp-peer/build/bin} WORK=${5:-$(mktemp -d)}
THREADS=${THREADS:-2}
TOK=()  # TOKENIZER=path: for models without their own (lowbit synth)
[ -n "${TOKENIZER:-}" ] && TOK=(--tokenizer "$TOKENIZER")
LOWBIT=${LOWBIT:-$(cd "$(dirname "$0")/.." && pwd)/build/lowbit}
mkdir -p "$WORK"
[ -f "$WORK/base-f32.gguf" ] || "$LOWBIT" export -m "$MODEL" "${TOK[@]}" --type F32 -o "$WORK/base-f32.gguf" >/dev/null
[ -f "$WORK/base-nf4.lowbit" ] ||
  "$LOWBIT" quantize -m "$MODEL" "${TOK[@]}" -r rtn:nf4:g64:dq -o "$WORK/base-nf4.lowbit" >/dev/null
echo "uptime: $(uptime)"

"$PEER/llama-finetune" -m "$WORK/base-f32.gguf" -f "$TEXT" -c "$CTX" -b "$CTX" -ub "$CTX" -t "$THREADS" -tb "$THREADS" \
  --epochs 1 -o "$WORK/peer-out.gguf" >"$WORK/peer.log" 2>&1
last=$(tr '\r' '\n' <"$WORK/peer.log" | grep '^train:' | tail -1)
n=$(sed -E 's/.*data=0*([0-9]+)\/.*/\1/' <<<"$last")
t=$(sed -E 's/.* t=([0-9:]+) .*/\1/' <<<"$last" | awk -F: '{s=0; for (i=1;i<=NF;i++) s=s*60+$i; print s}')
awk -v n="$n" -v c="$CTX" -v t="$t" 'BEGIN{printf "llama-finetune  f32 full       batch 1  %8d tokens %7.1f s %8.0f tok/s\n", n*c, t, n*c/t}'

run_lowbit() {  # base label batch steps [extra args]
  local base=$1 label=$2 batch=$3 steps=$4; shift 4
  "$LOWBIT" finetune -m "$base" "${TOK[@]}" -d "$TEXT" -o "$WORK/lb-$label-$batch" -c "$CTX" -b "$batch" --steps "$steps" \
    --holdout 0 --threads "$THREADS" --json "$@" 2>/dev/null |
    python3 -c "import json,sys; j=json.load(sys.stdin); print('lowbit finetune %-14s batch %d  %8d tokens %7.1f s %8.0f tok/s' % ('$label', $batch, round(j['tok_per_s']*j['seconds']), j['seconds'], j['tok_per_s']))"
}
tokens=$((n * CTX))
run_lowbit "$WORK/base-nf4.lowbit" "nf4 QLoRA r16" 1 $((tokens / CTX))
run_lowbit "$WORK/base-nf4.lowbit" "nf4 QLoRA r16" 4 $((tokens / CTX / 4))
[ "${SKIP_F32_LORA:-0}" = 1 ] || run_lowbit "$MODEL" "f32 LoRA r16" 4 $((tokens / CTX / 4))
