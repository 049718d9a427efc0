#!/usr/bin/env bash
# Byte-level BPE GGUF export checked with llama.cpp's own tokenizer: tiny random models with the
# SmolLM2 (tokenizer.json) and Llama-3 (tiktoken) vocabularies are exported, and llama-tokenize
# must give the Hugging Face reference ids of smollm2-tokenizer/golden-tokens.json, and Llama-3's
# known ids for "Hello world". Needs build/lowbit (or $LB), python3 and the llama.cpp peer build
# ($LLAMACPP_BIN, default /root/llamacpp-peer/build/bin).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED="${LOWBIT_SHARED:-$(cd .. && pwd)/shared}"
LB="${LB:-build/lowbit}"
LT="${LLAMACPP_BIN:-/root/llamacpp-peer/build/bin}/llama-tokenize"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
export_tiny() {  # NAME VOCAB TOKENIZER
  $LB synth --out "$TMP/$1" --hidden 64 --intermediate 128 --layers 1 --heads 2 --kv-heads 2 \
    --vocab "$2" --context 256 > /dev/null
  $LB export --model "$TMP/$1" --tokenizer "$3" --out "$TMP/$1.gguf" --type F16 > /dev/null
}
export_tiny smol 49152 "$SHARED/models/smollm2-tokenizer/tokenizer.json"
export_tiny l3 128256 "$SHARED/models/llama3-tokenizer/tokenizer.model"
python3 - "$LT" "$TMP" "$SHARED/models/smollm2-tokenizer/golden-tokens.json" <<'PY'
import json, subprocess, sys
lt, tmp, golden = sys.argv[1:]
def ids(gguf, text):
    open(f"{tmp}/t.txt", "w", encoding="utf-8").write(text)
    out = subprocess.run([lt, "-m", gguf, "-f", f"{tmp}/t.txt", "--no-escape", "--ids",
                          "--log-disable"], capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])
cases = json.load(open(golden))["cases"]
bad = [c["text"] for c in cases if ids(f"{tmp}/smol.gguf", c["text"]) != c["ids"]]
l3 = ids(f"{tmp}/l3.gguf", "Hello world")
print(f"SmolLM2: {len(cases) - len(bad)}/{len(cases)} golden texts equal; Llama-3: {l3}")
sys.exit(1 if bad or l3 != [128000, 9906, 1917] else 0)
PY
