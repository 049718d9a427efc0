#!/usr/bin/env bash
# The "Calibrated GGUF export: lowbit vs llama.cpp at equal type and size" table of
# docs/BENCHMARKS.md: ref-m exported by lowbit (--method rtn / imatrix / gptq) and quantized by
# llama.cpp's llama-quantize (with and without llama-imatrix on the same calibration text), every
# file scored by `lowbit eval` against the fp32 model (KLD, top-1, ppl) on wikitext-2 test.
# Needs build/lowbit and the peer build (../shared/tools/build-llamacpp-peer.sh DIR; pass
# DIR/build/bin as $LLAMACPP_BIN). Quality numbers only: the machine may be busy.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${LOWBIT_SHARED:-$(cd .. && pwd)/shared}"
export LOWBIT_SHARED="$SHARED"
LB=build/lowbit
OUT="${TMPDIR:-/tmp}/lowbit-gguf-vs-llamacpp"
LLAMACPP_BIN="${LLAMACPP_BIN:-/root/llamacpp-peer/build/bin}"
MODEL="$SHARED/models/ref-m"
TEXT="$SHARED/data/wikitext-2-raw/wiki.test.raw"
TYPES="${TYPES:-Q4_0 Q4_K_M Q3_K_M}"
mkdir -p "$OUT"
$LB export -m "$MODEL" --type F32 -o "$OUT/f32.gguf" > /dev/null
cat "$SHARED"/data/calibration/*.utf8 > "$OUT/calib.txt"
"$LLAMACPP_BIN/llama-imatrix" -m "$OUT/f32.gguf" -f "$OUT/calib.txt" -c 256 --chunks 128 -t 2 \
  -o "$OUT/imatrix.gguf" > "$OUT/imatrix.log" 2>&1
for T in $TYPES; do
  for M in rtn imatrix gptq; do
    $LB export -m "$MODEL" --type "$T" --method "$M" -o "$OUT/lowbit-$T-$M.gguf" > /dev/null 2>&1
  done
  "$LLAMACPP_BIN/llama-quantize" "$OUT/f32.gguf" "$OUT/llamacpp-$T-plain.gguf" "$T" 2 > /dev/null 2>&1
  "$LLAMACPP_BIN/llama-quantize" --imatrix "$OUT/imatrix.gguf" "$OUT/f32.gguf" \
    "$OUT/llamacpp-$T-imatrix.gguf" "$T" 2 > /dev/null 2>&1
done
echo "| type | file | bytes | ppl | KLD mean | KLD p99 | top-1 |"
echo "|---|---|---|---|---|---|---|"
for T in $TYPES; do
  for F in llamacpp-$T-plain llamacpp-$T-imatrix lowbit-$T-rtn lowbit-$T-imatrix lowbit-$T-gptq; do
    J=$($LB eval --model "$OUT/$F.gguf" --reference "$MODEL" -f "$TEXT" --ctx 256 --max-tokens 32768 --json)
    python3 -c "import json,sys; j=json.loads(sys.argv[1]); print('| $T | $F | %d | %.3f | %.5f | %.4f | %.2f%% |' % (int(sys.argv[2]), j['ppl'], j['kld_mean'], j['kld_p99'], 100*j['top1_agree']))" "$J" "$(stat -c %s "$OUT/$F.gguf")"
  done
done
