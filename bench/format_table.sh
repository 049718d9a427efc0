#!/usr/bin/env bash
# Quantizes a model with each recipe and prints a markdown table of size, bits per weight and
# wikitext-2 perplexity (ctx 256, first 100000 tokens: the protocol of ref-m's golden.json).
# Usage: bench/format_table.sh [MODEL] [RECIPE ...]   (run from the repo root after a build)
set -euo pipefail
SHARED="${LOWBIT_SHARED:-$(cd .. && pwd)/shared}"
MODEL="${1:-$SHARED/models/ref-m}"
shift || true
RECIPES=("$@")
[ ${#RECIPES[@]} -eq 0 ] && RECIPES=(rtn:int8:g128 rtn:int6:g128 rtn:int5:g128 rtn:int4:g128 rtn:int4:g128:clip
  rtn:int4:g128:asym rtn:int4:g32 rtn:nf4:g64 rtn:nf4:g64:dq rtn:fp4:g32 rtn:fp8:gc rtn:int3:g128
  rtn:int3:g128:clip rtn:int3:g64:asym rtn:int2:g64:asym rtn:ternary:g64)
TEXT="$SHARED/data/wikitext-2-raw/wiki.test.raw"
LB=build/lowbit
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
ppl() { $LB perplexity --model "$1" --file "$TEXT" --ctx 256 --max-tokens 100000 --json |
  python3 -c 'import json,sys; j=json.load(sys.stdin); print("%.3f" % j["ppl"])'; }
base=$(ppl "$MODEL")
echo "| recipe | file MiB | bits/weight (all) | bits/weight (linear) | ppl | Δppl |"
echo "|---|---|---|---|---|---|"
echo "| fp32 (original) | $(du -m --apparent-size "$MODEL"/model.safetensors | cut -f1) | 32 | 32 | $base | 0 |"
for r in "${RECIPES[@]}"; do
  out="$TMP/m.lowbit"
  q=$($LB quantize --model "$MODEL" --out "$out" --recipe "$r" --json)
  p=$(ppl "$out")
  python3 - "$r" "$p" "$base" "$q" <<'PY'
import json, sys
r, p, base, q = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4])
print(f"| {r} | {q['total_bytes']/2**20:.2f} | {q['bits_per_weight']:.3f} | {q['linear_bits_per_weight']:.3f} | {p:.3f} | {p-base:+.3f} |")
PY
done
