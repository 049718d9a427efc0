#!/usr/bin/env bash
# Serving throughput side by side (docs/BENCHMARKS.md, "Serving"): a random-weight model with
# TinyLlama-1.1B shapes (22 layers, hidden 2048, MLP 5632, 32 heads / 4 KV heads, vocab 32000),
# int4 in groups of 32, served by lowbit serve and by llama.cpp's llama-server on the very same
# codes (exported to Q4_0), both with 2 threads; bench/serve_load.mjs sends greedy streaming
# completions of 64 tokens (ignore_eos) at concurrency 1 and 16 and reports aggregate tok/s.
# Needs build/lowbit, node, and the peer build (../shared/tools/build-llamacpp-peer.sh DIR; pass
# DIR/build/bin as $LLAMACPP_BIN). Run it on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${LOWBIT_SHARED:-$(cd .. && pwd)/shared}"
LB=build/lowbit
TMP="${TMPDIR:-/tmp}/lowbit-serve-bench"
TOK="$SHARED/models/llama2-tokenizer/tokenizer.model"
LLAMACPP_BIN="${LLAMACPP_BIN:-/root/llamacpp-peer/build/bin}"
N_TOKENS="${N_TOKENS:-64}"
CONCURRENCY="${CONCURRENCY:-1 16}"
PORT_LB=18431
PORT_LC=18432
mkdir -p "$TMP"
[ -f "$TMP/model/model.safetensors" ] || $LB synth --out "$TMP/model" --hidden 2048 --intermediate 5632 \
  --layers 22 --heads 32 --kv-heads 4 --vocab 32000 --context 2048 --dtype F16 > /dev/null
[ -f "$TMP/tl.lowbit" ] || $LB quantize -m "$TMP/model" -o "$TMP/tl.lowbit" -r rtn:int4:g32 \
  --tensor "lm_head=rtn:int4:g32" --tensor "embed_tokens=rtn:int4:g32" --tokenizer "$TOK" > /dev/null
[ -f "$TMP/tl-q4_0.gguf" ] || $LB export -m "$TMP/tl.lowbit" --format gguf -o "$TMP/tl-q4_0.gguf" > /dev/null

wait_port() {  # up to 120 s for a server to answer /health
  for _ in $(seq 1 1200); do
    curl -sf "http://127.0.0.1:$1/health" > /dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server on port $1 did not come up" >&2
  return 1
}

load() {  # port, concurrency
  node bench/serve_load.mjs --url "http://127.0.0.1:$1" --concurrency "$2" --requests "$(( $2 < 2 ? 2 : $2 ))" \
    --max-tokens "$N_TOKENS" --timeout-s 600
}

uptime
$LB serve -m "$TMP/tl.lowbit" --port $PORT_LB --parallel 16 --threads 2 2> "$TMP/lowbit-serve.log" &
pid=$!
wait_port $PORT_LB
load $PORT_LB 1 > /dev/null  # warm-up
for c in $CONCURRENCY; do echo "== lowbit serve, $c streams"; load $PORT_LB "$c"; done
kill -TERM $pid; wait $pid || true

if [ -x "$LLAMACPP_BIN/llama-server" ]; then
  "$LLAMACPP_BIN/llama-server" -m "$TMP/tl-q4_0.gguf" --port $PORT_LC -t 2 -tb 2 -np 16 -c $((16 * 256)) \
    --no-webui > "$TMP/llama-server.log" 2>&1 &
  pid=$!
  wait_port $PORT_LC
  load $PORT_LC 1 > /dev/null
  for c in $CONCURRENCY; do echo "== llama-server, $c streams"; load $PORT_LC "$c"; done
  kill -TERM $pid; wait $pid || true
fi
uptime
