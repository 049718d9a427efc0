#!/usr/bin/env bash
# The "25 % smaller" rows of docs/BENCHMARKS.md ("Below 4 bits at equal file size"): lowbit
# files planned by `lowbit quantize --target-size` for 75 % of the bytes of each llama.cpp file of
# that table (2.5-4.5 MB of ref-m), with and without `--tune kd`, default candidates and
# calibration (the calibration mix llama.cpp's importance matrix was made from), one measurement
# reused for every size. KLD vs fp32 by `lowbit eval` on wikitext-2 test, ctx 256, 32768 tokens.
# SIZES: llama.cpp file bytes (default: the table's). Quality numbers only: the machine may be busy.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${LOWBIT_SHARED:-$(cd .. && pwd)/shared}"
export LOWBIT_SHARED="$SHARED"
LB="${LOWBIT:-build/lowbit}"
OUT="${TMPDIR:-/tmp}/lowbit-budget-75"
MODEL="$SHARED/models/ref-m"
TEXT="$SHARED/data/wikitext-2-raw/wiki.test.raw"
SIZES="${SIZES:-2655520 2753824 2935584 3075872 3147552 3461920 3683616 4332320}"
mkdir -p "$OUT"
echo "| llama.cpp bytes | target (75 %) | lowbit bytes | KLD | top-1 | with --tune kd | top-1 |"
echo "|---|---|---|---|---|---|---|"
for S in $SIZES; do
  T=$((S * 3 / 4))
  row="| $S | $T"
  for tune in "" kd; do
    f="$OUT/t$T${tune:+-$tune}.lowbit"
    $LB quantize -m "$MODEL" -o "$f" -r gptq:int4:g128 --target-size "$T" --measurement "$OUT/measure.json" \
      ${tune:+--tune $tune} > /dev/null 2>&1
    j=$($LB eval --model "$f" --reference "$MODEL" -f "$TEXT" --ctx 256 --max-tokens 32768 --json)
    [ -z "$tune" ] && row="$row | $(stat -c %s "$f")"
    row="$row | $(python3 -c "import json,sys; j=json.loads(sys.argv[1]); print('%.5f | %.2f %%' % (j['kld_mean'], 100*j['top1_agree']))" "$j")"
  done
  echo "$row |"
done
