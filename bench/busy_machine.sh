#!/usr/bin/env bash
# Speed on a busy machine (docs/BENCHMARKS.md "A busy machine"): 2-thread prefill and decode,
# first quiet, then with one CPU-bound process running beside the benchmark, for ref-m int4 and a
# 2-layer model with Llama-2-7B layer shapes (int4 g32, memory-bound decode). llama.cpp's
# llama-bench on the same Q4_0 codes gives the peer's rows when the peer build is there
# ($LLAMACPP_BIN, default /root/llamacpp-peer/build/bin). LB_OLD=/path/to/lowbit adds rows for
# another lowbit build, timed in the same run. Start it on an otherwise quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${LOWBIT_SHARED:-$(cd .. && pwd)/shared}"
LB=build/lowbit
TMP="${TMPDIR:-/tmp}/lowbit-busy"
TOK="$SHARED/models/llama2-tokenizer/tokenizer.model"
LLAMACPP_BIN="${LLAMACPP_BIN:-/root/llamacpp-peer/build/bin}"
REPS="${REPS:-5}"
mkdir -p "$TMP"

$LB quantize -m "$SHARED/models/ref-m" -o "$TMP/refm-int4.lowbit" -r rtn:int4:g128 > /dev/null
[ -f "$TMP/s7/model.safetensors" ] || $LB synth --out "$TMP/s7" --layers 2 > /dev/null
$LB quantize -m "$TMP/s7" -o "$TMP/s7-int4.lowbit" -r rtn:int4:g32 --tensor "lm_head=rtn:int4:g32" \
  --tokenizer "$TOK" > /dev/null
$LB export -m "$TMP/s7-int4.lowbit" --format gguf -o "$TMP/s7-q4_0.gguf" > /dev/null  # same codes

hog_pid=""
start_hog() { bash -c 'while :; do :; done' & hog_pid=$!; sleep 0.5; }
stop_hog() { kill "$hog_pid"; wait "$hog_pid" 2>/dev/null || true; hog_pid=""; }
trap '[ -n "$hog_pid" ] && kill "$hog_pid" 2>/dev/null; true' EXIT

# One line per run: tool model state prefill_tok_s decode_tok_s
lowbit_row() {  # BIN LABEL MODEL NAME STATE
  local j
  j=$("$1" bench -m "$3" -p 64 -n 64 -r "$REPS" --threads 2 --no-bandwidth --json)
  python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(sys.argv[2], sys.argv[3], sys.argv[4], "%.0f" % j["prefill_tok_s"], "%.0f" % j["decode_tok_s"])' \
    "$j" "$2" "$4" "$5"
}
llamacpp_row() {  # MODEL NAME STATE
  local j
  j=$("$LLAMACPP_BIN/llama-bench" -m "$1" -p 64 -n 64 -t 2 -r "$REPS" -o json 2>/dev/null)
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); p=[x["avg_ts"] for x in r if x["n_prompt"]>0][0]; d=[x["avg_ts"] for x in r if x["n_gen"]>0][0]; print("llama.cpp", sys.argv[2], sys.argv[3], "%.0f" % p, "%.0f" % d)' \
    "$j" "$2" "$3"
}

uptime
rows="$TMP/rows.txt"
: > "$rows"
for state in quiet busy; do
  [ "$state" = busy ] && start_hog
  for m in "refm-int4:$TMP/refm-int4.lowbit" "7b-shape-int4:$TMP/s7-int4.lowbit"; do
    name="${m%%:*}" file="${m#*:}"
    lowbit_row "$LB" lowbit "$file" "$name" "$state" | tee -a "$rows"
    [ -n "${LB_OLD:-}" ] && lowbit_row "$LB_OLD" lowbit-old "$file" "$name" "$state" | tee -a "$rows"
  done
  [ -x "$LLAMACPP_BIN/llama-bench" ] && llamacpp_row "$TMP/s7-q4_0.gguf" 7b-shape-int4 "$state" | tee -a "$rows"
  [ "$state" = busy ] && stop_hog
done
uptime

echo
echo "| tool | model | prefill quiet | prefill busy | kept | decode quiet | decode busy | kept |"
echo "|---|---|---|---|---|---|---|---|"
python3 - "$rows" <<'EOF'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
by = {(t, m, s): (float(p), float(d)) for t, m, s, p, d in rows}
for (t, m, s), (p, d) in by.items():
    if s != "quiet" or (t, m, "busy") not in by: continue
    bp, bd = by[(t, m, "busy")]
    print(f"| {t} | {m} | {p:.0f} | {bp:.0f} | {100*bp/p:.0f} % | {d:.0f} | {bd:.0f} | {100*bd/d:.0f} % |")
EOF
