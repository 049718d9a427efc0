#!/usr/bin/env bash
# HellaSwag accuracy from `lowbit tasks --protocol llama.cpp` beside llama.cpp's
# `llama-perplexity --hellaswag` on the same GGUF files (docs/BENCHMARKS.md, "Zero-shot tasks").
# The model (default ref-m) is exported to F32 and to Q4_K_M GGUF; both tools read the first
# $N_TASKS tasks of the shared HellaSwag file (llama-perplexity gets exactly those tasks, so its
# random task order does not change the final accuracy). Needs build/lowbit and the peer build
# ($LLAMACPP_BIN, default /root/llamacpp-peer/build/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${LOWBIT_SHARED:-$(cd .. && pwd)/shared}"
LB=build/lowbit
MODEL="${MODEL:-$SHARED/models/ref-m}"
N_TASKS="${N_TASKS:-10042}"
TYPES="${TYPES:-F32 Q4_K_M}"
LLAMACPP_BIN="${LLAMACPP_BIN:-/root/llamacpp-peer/build/bin}"
CTX="${CTX:-256}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
# (head closes the pipe early: bzcat's SIGPIPE is expected, so the line count is checked instead)
bzcat "$SHARED/data/hellaswag/hellaswag_val_full.txt.bz2" | head -n $((6 * N_TASKS)) > "$TMP/hs.txt" || true
if [ "$(wc -l < "$TMP/hs.txt")" -ne $((6 * N_TASKS)) ]; then
  echo "tasks_vs_llamacpp.sh: the HellaSwag file has fewer than $N_TASKS tasks" >&2
  exit 1
fi
echo "| GGUF | tasks | llama-perplexity --hellaswag | lowbit tasks (llama.cpp protocol, acc_tok) | lowbit lm-eval acc / acc_norm |"
echo "|---|---|---|---|---|"
for T in $TYPES; do
  $LB export -m "$MODEL" --type "$T" -o "$TMP/m.gguf" > /dev/null 2>&1
  LC=$("$LLAMACPP_BIN/llama-perplexity" -m "$TMP/m.gguf" -f "$TMP/hs.txt" --hellaswag --hellaswag-tasks "$N_TASKS" \
       -c "$CTX" -b "$CTX" -t 2 2>/dev/null | awk -v n="$N_TASKS" '$1 == n { print $2 }')
  LBC=$($LB tasks -m "$TMP/m.gguf" --task hellaswag -f "$TMP/hs.txt" --protocol llama.cpp --json |
        python3 -c "import json,sys; m=json.load(sys.stdin)['tasks'][0]['model']; print(f\"{100*m['acc_tok']:.8f}%\")")
  LBE=$($LB tasks -m "$TMP/m.gguf" --task hellaswag -f "$TMP/hs.txt" --json |
        python3 -c "import json,sys; m=json.load(sys.stdin)['tasks'][0]['model']; print(f\"{100*m['acc']:.2f}% / {100*m['acc_norm']:.2f}%\")")
  echo "| $T | $N_TASKS | $LC | $LBC | $LBE |"
done
