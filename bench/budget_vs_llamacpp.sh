#!/usr/bin/env bash
# The "Below 4 bits at equal file size" table of docs/BENCHMARKS.md: llama.cpp's low-bit types
# (llama-quantize with an importance matrix from llama-imatrix on the same calibration text)
# against lowbit files planned by `lowbit quantize --target-size` for the same byte count (and
# for 25% fewer bytes), on ref-m. KLD vs the fp32 model on wikitext-2 test, ctx 256:
# llama.cpp's files with llama-perplexity --kl-divergence (128 chunks of 256 = 32768 tokens;
# it scores the second half of each chunk), lowbit's with `lowbit eval` (32768 tokens, every
# position). On the Q3_K_M/Q4_K_M files both tools read, lowbit eval gives 3-5% higher KLD, so
# the comparison is conservative for lowbit.
# Needs build/lowbit and the peer build (../shared/tools/build-llamacpp-peer.sh DIR; pass
# DIR/build/bin as $LLAMACPP_BIN). RECIPES: base recipes whose measurement is allocated
# (default "gptq:int4:g128 gptq:int4:g128:rot"). Quality numbers only: the machine may be busy.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${LOWBIT_SHARED:-$(cd .. && pwd)/shared}"
export LOWBIT_SHARED="$SHARED"
LB="${LOWBIT:-build/lowbit}"
OUT="${TMPDIR:-/tmp}/lowbit-budget-vs-llamacpp"
LLAMACPP_BIN="${LLAMACPP_BIN:-/root/llamacpp-peer/build/bin}"
MODEL="$SHARED/models/ref-m"
TEXT="$SHARED/data/wikitext-2-raw/wiki.test.raw"
TYPES="${TYPES:-IQ2_XXS IQ2_XS IQ2_S Q2_K IQ3_XXS IQ3_S Q3_K_M Q4_K_M}"
RECIPES="${RECIPES:-gptq:int4:g128 gptq:int4:g128:rot}"
mkdir -p "$OUT"
$LB export -m "$MODEL" --type F32 -o "$OUT/f32.gguf" > /dev/null
cat "$SHARED"/data/calibration/*.utf8 > "$OUT/calib.txt"
"$LLAMACPP_BIN/llama-imatrix" -m "$OUT/f32.gguf" -f "$OUT/calib.txt" -c 256 --chunks 128 -t 2 \
  -o "$OUT/imatrix.gguf" > "$OUT/imatrix.log" 2>&1
# --no-repack: on CPUs that report AMX but whose kernel has not enabled it, the repacked
# AMX path dies with SIGILL.
"$LLAMACPP_BIN/llama-perplexity" -m "$OUT/f32.gguf" -f "$TEXT" -c 256 --chunks 128 -t 2 --no-repack \
  --kl-divergence-base "$OUT/base.kld" > "$OUT/base.log" 2>&1
lowbit_row() {  # name bytes-target recipe
  local f="$OUT/lowbit-$1.lowbit" m="$OUT/measure-${3//:/_}.json"
  $LB quantize -m "$MODEL" -o "$f" -r "$3" --target-size "$2" --measurement "$m" --json > "$OUT/$1.json" 2>/dev/null
  local j
  j=$($LB eval --model "$f" --reference "$MODEL" -f "$TEXT" --ctx 256 --max-tokens 32768 --json)
  python3 -c "import json,sys; j=json.loads(sys.argv[1]); print('| lowbit --target-size %s, %s | %d | %.5f | %.2f%% |' % (sys.argv[3], sys.argv[4], int(sys.argv[2]), j['kld_mean'], 100*j['top1_agree']))" \
    "$j" "$(stat -c %s "$f")" "$2" "$3"
}
echo "| file | bytes | KLD mean | top-1 |"
echo "|---|---|---|---|"
for T in $TYPES; do
  "$LLAMACPP_BIN/llama-quantize" --imatrix "$OUT/imatrix.gguf" "$OUT/f32.gguf" "$OUT/llamacpp-$T.gguf" "$T" 2 \
    > /dev/null 2>&1
  "$LLAMACPP_BIN/llama-perplexity" -m "$OUT/llamacpp-$T.gguf" --kl-divergence-base "$OUT/base.kld" --kl-divergence \
    -t 2 --no-repack > "$OUT/kld-$T.log" 2>&1
  BYTES=$(stat -c %s "$OUT/llamacpp-$T.gguf")
  KLD=$(grep -E 'Mean +KLD' "$OUT/kld-$T.log" | awk '{print $3}')
  TOP=$(grep -E '^Same top p' "$OUT/kld-$T.log" | tail -1 | awk '{print $4}')
  echo "| llama.cpp $T + imatrix | $BYTES | $KLD | $TOP% |"
  for R in $RECIPES; do
    lowbit_row "$T-${R//:/_}" "$BYTES" "$R"
  done
  R=${RECIPES%% *}
  lowbit_row "$T-75-${R//:/_}" "$((BYTES * 3 / 4))" "$R"
done
