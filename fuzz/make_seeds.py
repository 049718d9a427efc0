#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/<target>/ (small, hand-made files; fuzz/README.md).

Usage: fuzz/make_seeds.py [LOWBIT_BIN]
Hand-built seeds need only Python. With a `lowbit` binary (default build/lowbit), seeds that
are easiest to get from lowbit itself are added too: a tiny synthetic model quantized to .lowbit
and exported to GGUF, GPTQ, AWQ and compressed-tensors. Re-running rewrites the seeds; the
crash inputs in fuzz/regressions/ are never touched. Big shared model files are never copied.
"""
import base64, json, os, shutil, struct, subprocess, sys, tempfile

ROOT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(ROOT)


def put(target, name, data):
    d = os.path.join(ROOT, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- safetensors ---------------------------------------------------------------------------
def safetensors(tensors, metadata=None):
    """tensors: [(name, dtype, shape, bytes)]"""
    header, blobs, off = {}, b"", 0
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, data in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + len(data)]}
        blobs += data
        off += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + blobs


def f32(*v):
    return struct.pack("<%df" % len(v), *v)


def seeds_safetensors():
    put("safetensors", "f32", safetensors([("w", "F32", [2, 2], f32(1, -2, 3.5, 0))], {"format": "pt"}))
    put("safetensors", "mixed", safetensors([
        ("a", "F16", [3], struct.pack("<3e", 1, -0.5, 65504)),
        ("b", "BF16", [1, 2], b"\x80\x3f\x00\xc0"),
        ("c", "I64", [2], struct.pack("<2q", 7, -1)),
        ("d", "U8", [0], b"")]))
    put("safetensors", "empty", safetensors([]))
    put("safetensors", "truncated", safetensors([("w", "F32", [4], f32(1, 2, 3, 4))])[:-5])


# ---- GGUF ----------------------------------------------------------------------------------
def gstr(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gkv(key, t, payload):
    return gstr(key) + struct.pack("<I", t) + payload


def gguf(kvs, tensors, version=3, align=32):
    """tensors: [(name, ggml_type, ne (innermost first), bytes)]"""
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs)
    off, data = 0, b""
    for name, t, ne, blob in tensors:
        out += gstr(name) + struct.pack("<I", len(ne)) + struct.pack("<%dQ" % len(ne), *ne)
        out += struct.pack("<IQ", t, off)
        data += blob + b"\0" * (-len(blob) % align)
        off = len(data)
    out += b"\0" * (-len(out) % align)
    return out + data


BLOCKS = [  # (ggml type id, DType order in ggml_blocks.cpp, elements, bytes)
    (8, 0, 32, 34), (2, 1, 32, 18), (6, 2, 32, 22), (12, 3, 256, 144), (14, 4, 256, 210),
    (7, 5, 32, 24), (11, 6, 256, 110), (13, 7, 256, 176), (20, 8, 32, 18), (10, 9, 256, 84),
    (23, 10, 256, 136), (34, 11, 256, 54), (35, 12, 256, 66)]


def block_bytes(n, salt):
    # Pseudo-random bytes with sane fp16 scales at the usual places (d = 0x3c00 = 1.0).
    b = bytearray((i * 37 + salt * 11 + 5) % 251 for i in range(n))
    return bytes(b)


def seeds_gguf():
    kvs = [gkv("general.architecture", 8, gstr("llama")),
           gkv("general.alignment", 4, struct.pack("<I", 32)),
           gkv("a.u8", 0, b"\x07"), gkv("a.i8", 1, b"\xff"), gkv("a.u16", 2, b"\x01\x02"),
           gkv("a.i16", 3, b"\xfe\xff"), gkv("a.i32", 5, struct.pack("<i", -5)),
           gkv("a.f32", 6, f32(0.5)), gkv("a.bool", 7, b"\x01"), gkv("a.u64", 10, struct.pack("<Q", 9)),
           gkv("a.i64", 11, struct.pack("<q", -9)), gkv("a.f64", 12, struct.pack("<d", 2.5)),
           gkv("a.strs", 9, struct.pack("<IQ", 8, 2) + gstr("x") + gstr("yz")),
           gkv("a.ints", 9, struct.pack("<IQ", 5, 3) + struct.pack("<3i", 1, 2, 3)),
           gkv("a.nested", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 6, 1) + f32(1.0))]
    tensors = [("f32", 0, [4, 2], f32(*range(8))), ("f16", 1, [4], struct.pack("<4e", 1, 2, 3, 4))]
    for t, _, elems, nbytes in BLOCKS:
        tensors.append(("t%d" % t, t, [elems], block_bytes(nbytes, t)))
    put("gguf", "all_types_v3", gguf(kvs, tensors))
    put("gguf", "v2_small", gguf(kvs[:3], tensors[:2], version=2))
    put("gguf", "unknown_type", gguf(kvs[:1], [("q41", 3, [32], block_bytes(20, 3))]))
    for f in ("iq4_xs.gguf", "q2_k.gguf", "tq1_0.gguf", "tq2_0.gguf"):
        src = os.path.join(REPO, "tests/io/data/llamacpp", f)
        if os.path.getsize(src) <= 16384:
            shutil.copy(src, os.path.join(ROOT, "corpus/gguf", "llamacpp_" + f))


def seeds_ggml_blocks():
    for t, idx, _, nbytes in BLOCKS:
        put("ggml_blocks", "type%02d" % idx, bytes([idx]) + block_bytes(nbytes, t) + block_bytes(nbytes, t + 1))
        put("ggml_blocks", "type%02d_ff" % idx, bytes([idx]) + b"\xff" * nbytes)


# ---- llama2.c --------------------------------------------------------------------------------
def llama2c(dim=8, hidden=16, layers=1, heads=2, kv=1, vocab=8, seq=4, v1=False, shared=True):
    hd = dim // heads
    kvd = kv * hd
    n = lambda k: f32(*[((i * 7) % 13 - 6) / 8.0 for i in range(k)])
    emb, rms = n(vocab * dim), n(layers * dim)
    mats = [n(layers * dim * dim), n(layers * kvd * dim), n(layers * kvd * dim), n(layers * dim * dim)]
    mlp = [n(layers * hidden * dim), n(layers * dim * hidden), n(layers * hidden * dim)]
    if not v1:
        hdr = struct.pack("<7i", dim, hidden, layers, heads, kv, vocab if shared else -vocab, seq)
        freq = n(seq * hd // 2) * 2
        body = emb + rms + b"".join(mats) + rms + b"".join(mlp) + n(dim) + freq
        return hdr + body + (b"" if shared else n(vocab * dim))
    hdr = struct.pack("<Ii7iB", 0x616b3432, 1, dim, hidden, layers, heads, kv, vocab, seq, 1 if shared else 0)
    hdr += b"\0" * (256 - len(hdr))
    body = rms + rms + n(dim) + emb + b"".join(mats) + b"".join(mlp)
    return hdr + body + (b"" if shared else n(vocab * dim))


def llama2c_tokenizer(pieces):
    out = struct.pack("<i", max(len(p) for p in pieces))
    for i, p in enumerate(pieces):
        out += struct.pack("<fi", -float(i), len(p)) + p
    return out


TINY_PIECES = [b"<unk>", b"\n<s>\n", b"\n</s>\n", b"<0x0A>", b" ", b"e", b"t", b"a", b"o", b" t",
               b"he", b" the", b"Once", b" upon", b"\xe2\x96\x81", b"<0xFF>"]


def seeds_llama2c():
    put("llama2c", "legacy_shared", llama2c())
    put("llama2c", "legacy_unshared", llama2c(shared=False))
    put("llama2c", "v1", llama2c(v1=True))
    put("llama2c", "v1_gqa", llama2c(dim=16, heads=4, kv=2, v1=True, shared=False))
    tok = llama2c_tokenizer(TINY_PIECES)
    put("llama2c_tokenizer", "tiny", struct.pack("<H", len(TINY_PIECES)) + tok)
    put("llama2c_tokenizer", "short_vocab", struct.pack("<H", 4) + tok)
    put("llama2c_tokenizer", "truncated", struct.pack("<H", len(TINY_PIECES)) + tok[:-3])


# ---- HF config.json ------------------------------------------------------------------------
HF_CONFIG = {"architectures": ["LlamaForCausalLM"], "hidden_size": 16, "intermediate_size": 32,
             "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1,
             "vocab_size": 32, "max_position_embeddings": 16, "rms_norm_eps": 1e-5,
             "rope_theta": 10000.0, "tie_word_embeddings": False, "bos_token_id": 1,
             "eos_token_id": 2, "torch_dtype": "float16"}


def seeds_hf_config():
    put("hf_config", "llama", json.dumps(HF_CONFIG))
    put("hf_config", "qwen2", json.dumps(dict(HF_CONFIG, architectures=["Qwen2ForCausalLM"], head_dim=8,
                                             rope_scaling=None)))
    put("hf_config", "gptq", json.dumps(dict(HF_CONFIG, quantization_config={
        "quant_method": "gptq", "bits": 4, "group_size": 32, "sym": True, "desc_act": False,
        "checkpoint_format": "gptq"})))
    put("hf_config", "awq", json.dumps(dict(HF_CONFIG, quantization_config={
        "quant_method": "awq", "bits": 4, "group_size": 32, "zero_point": True, "version": "gemm"})))
    put("hf_config", "ct", json.dumps(dict(HF_CONFIG, quantization_config={
        "quant_method": "compressed-tensors", "format": "pack-quantized", "ignore": ["lm_head"],
        "config_groups": {"group_0": {"targets": ["Linear"], "weights": {
            "num_bits": 4, "type": "int", "symmetric": False, "strategy": "group", "group_size": 32,
            "actorder": None}}}})))
    put("hf_config", "rope_scaling", json.dumps(dict(HF_CONFIG, rope_scaling={"type": "linear", "factor": 2})))


# ---- tokenizers ----------------------------------------------------------------------------
def seeds_tokenizers():
    # Byte-level BPE tokenizer.json with a pre-tokenizer regex, added tokens and merges.
    alphabet = [chr(c) for c in range(ord("a"), ord("f"))] + ["Ġ", "Ċ", "H", "!"]
    vocab = {t: i for i, t in enumerate(["<|endoftext|>", "<s>"] + alphabet + ["ab", "Ġa", "abc"])}
    tj = {"version": "1.0", "added_tokens": [
              {"id": 0, "content": "<|endoftext|>", "single_word": False, "lstrip": False,
               "rstrip": False, "normalized": False, "special": True},
              {"id": 1, "content": "<s>", "special": True, "single_word": False, "lstrip": False,
               "rstrip": False, "normalized": False}],
          "normalizer": None,
          "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
              {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s+(?!\\S)|\\s+| ?\\p{L}+"},
               "behavior": "Isolated", "invert": False},
              {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
          "post_processor": None, "decoder": {"type": "ByteLevel"},
          "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
                    "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
                    "ignore_merges": False, "vocab": vocab, "merges": ["a b", "Ġ a", "ab c"]}}
    put("hf_tokenizer", "bytelevel_bpe", json.dumps(tj))
    tj2 = dict(tj, pre_tokenizer={"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
                                  "use_regex": True})
    tj2["model"] = dict(tj["model"], merges=[["a", "b"], ["Ġ", "a"]])
    put("hf_tokenizer", "bytelevel_pairs", json.dumps(tj2))
    put("hf_tokenizer", "not_bpe", json.dumps({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}))

    # tiktoken ranks.
    toks = [bytes([c]) for c in range(32, 127)] + [b"th", b"the", b" the", b"\xe2\x80"]
    tk = "".join("%s %d\n" % (base64.b64encode(t).decode(), i) for i, t in enumerate(toks))
    put("tiktoken", "small", tk)
    put("tiktoken", "bad_rank", "YQ== 0\nYg== 5\n")
    put("tiktoken", "bad_base64", "YQ== 0\n!!!! 1\n")

    # SentencePiece ModelProto.
    def varint(v):
        out = b""
        while True:
            b, v = v & 0x7F, v >> 7
            out += bytes([b | (0x80 if v else 0)])
            if not v:
                return out

    def ld(field, payload):
        return varint(field << 3 | 2) + varint(len(payload)) + payload

    def piece(p, score, t):
        return ld(1, ld(1, p.encode()) + varint(2 << 3 | 5) + struct.pack("<f", score) + varint(3 << 3) + varint(t))

    pieces = [("<unk>", 0, 2), ("<s>", 0, 3), ("</s>", 0, 3), ("<0x41>", 0, 6), ("▁", -1, 1),
              ("a", -2, 1), ("b", -3, 1), ("▁a", -4, 1), ("ab", -5, 1), ("▁ab", -6, 1)]
    for model_type, name in ((2, "bpe"), (1, "unigram")):
        trainer = varint(3 << 3) + varint(model_type) + varint(35 << 3) + varint(1) + ld(44, " ⁇ ".encode())
        norm = ld(1, b"identity") + varint(3 << 3) + varint(1) + varint(4 << 3) + varint(0)
        model = b"".join(piece(*p) for p in pieces) + ld(2, trainer) + ld(3, norm)
        put("sentencepiece", name, model)
    put("sentencepiece", "no_spec", b"".join(piece(*p) for p in pieces))

    # Tokenizer blobs: kind byte (tokenizer_blob.cpp order) + bytes.
    put("tokenizer_blob", "sentencepiece", b"\0" + open(os.path.join(ROOT, "corpus/sentencepiece/bpe"), "rb").read())
    put("tokenizer_blob", "tiktoken", b"\1" + tk.encode())
    put("tokenizer_blob", "spm_vocab", b"\2" + json.dumps({"tokens": ["<unk>", "<s>", "</s>", "a"],
                                                          "scores": [0, 0, 0, -1], "types": [2, 3, 3, 1]}).encode())
    put("tokenizer_blob", "hf_bpe", b"\4" + json.dumps(tj).encode())


# ---- recipes, chat templates, API bodies ---------------------------------------------------
def seeds_text():
    recipes = {
        "rtn": "rtn:int4:g128", "gptq_rules": "gptq:int3:g128:noact:clip:rot\nlm_head=f16\nlayers\\.0\\..*=rtn:int8:gc",
        "nf4_dq": "rtn:nf4:g64:dq", "awq_had": "awq:int4:g128:had", "lr": "gptq:int2:g64:lr16",
        "e8p": "gptq:e8p:g64\n.*down_proj=rtn:fp8:gc\nembed_tokens=rtn:int4:g32:asym:bf16s",
        "bad": "rtn:int9:g7:asym:asym", "regex_bomb": "rtn:int4\n(a+)+$=f16", "ternary": "rtn:ternary:g64\nq_proj=f32"}
    for k, v in recipes.items():
        put("recipe", k, v)
    msgs = json.dumps([{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"},
                       {"role": "assistant", "content": [{"type": "text", "text": "Yo"}]},
                       {"role": "user", "content": "Bye"}])
    tdir = os.path.join(REPO, "tests/serve/data/chat_templates")
    for f in sorted(os.listdir(tdir)):
        src = open(os.path.join(tdir, f), "rb").read()
        if len(src) <= 8192:
            put("chat_template", os.path.splitext(f)[0], src + b"\0" + msgs.encode())
    put("chat_template", "features", "{% macro m(x, y=2) %}{{ x ~ y }}{% endmacro %}{% set ns = namespace(n=0) %}"
        "{% for msg in messages if msg.role != 'system' %}{% set ns.n = ns.n + 1 %}{{ m(loop.index) }}"
        "{{ msg.content | string | upper | replace('A', 'b') | trim }}{% if loop.last %}{{ ns.n }}{% endif %}"
        "{% endfor %}{{ messages | tojson(indent=2) }}{{ range(3) | join(',') }}{{ 'x' * 3 }}"
        "{% filter lower %}ABC{% endfilter %}{{ raise_exception('no') if false else bos_token }}"
        "{{ [1,2,3][1:] | first }}{{ {'a': 1}.items() | list | length }}{{ '%s-%d' | format('a', 1) }}"
        "{{ strftime_now('%Y-%m-%d') }}\0" + msgs)
    bodies = {
        "chat": (1, {"model": "m", "messages": json.loads(msgs), "max_tokens": 8, "temperature": 0.5,
                     "top_p": 0.9, "top_k": 40, "min_p": 0.05, "stop": ["\n", "User:"], "seed": 1,
                     "stream": True, "stream_options": {"include_usage": True}, "logprobs": True,
                     "top_logprobs": 2, "lora": [{"id": 0, "scale": 0.5}]}),
        "completion": (0, {"model": "m", "prompt": "Once upon", "max_tokens": 4, "repeat_penalty": 1.1,
                           "repeat_last_n": 32, "logprobs": 3, "ignore_eos": True, "echo": False, "n": 1}),
        "completion_ids": (0, {"prompt": [1, 2, 3], "frequency_penalty": 0, "stop": "x"}),
        "bad": (1, {"messages": "nope", "max_tokens": -3})}
    for k, (e, body) in bodies.items():
        put("openai_api", k, bytes([e]) + json.dumps(body).encode())
    put("openai_api", "deep", b"\1" + b"[" * 600)


# ---- seeds made by lowbit itself -----------------------------------------------------------
def seeds_from_lowbit(lowbit):
    tmp = tempfile.mkdtemp(prefix="lowbit-seeds-")
    try:
        run = lambda *a: subprocess.run([lowbit, *a], check=True, stdout=subprocess.DEVNULL, cwd=tmp)
        run("synth", "-o", "m", "--hidden", "32", "--intermediate", "64", "--layers", "1", "--heads", "2",
            "--kv-heads", "2", "--vocab", len(TINY_PIECES).__str__(), "--context", "8")
        with open(os.path.join(tmp, "tok.bin"), "wb") as f:
            f.write(llama2c_tokenizer(TINY_PIECES))
        for recipe, name in (("rtn:int4:g32", "int4"), ("rtn:nf4:g32:dq", "nf4_dq"), ("rtn:int3:g32:asym", "int3_asym"),
                             ("rtn:ternary:g32\nembed_tokens=f16", "ternary")):
            r = recipe.split("\n")
            extra = ["--tensor", r[1]] if len(r) > 1 else []
            run("quantize", "-m", "m", "--tokenizer", "tok.bin", "-o", name + ".lowbit", "-r", r[0], *extra)
            shutil.copy(os.path.join(tmp, name + ".lowbit"), os.path.join(ROOT, "corpus/lowbit_file", name))
        run("export", "-m", "m", "--tokenizer", "tok.bin", "-o", "m.gguf", "--type", "Q8_0")
        shutil.copy(os.path.join(tmp, "m.gguf"), os.path.join(ROOT, "corpus/gguf_model", "q8_0_spm"))
        for fmt in ("gptq", "awq", "compressed-tensors"):
            run("export", "-m", "int4.lowbit", "--format", fmt, "-o", fmt)
            cfg = open(os.path.join(tmp, fmt, "config.json"), "rb").read()
            st = open(os.path.join(tmp, fmt, "model.safetensors"), "rb").read()
            put("hf_quant", fmt, struct.pack("<H", len(cfg)) + cfg + st)
    finally:
        shutil.rmtree(tmp)


def main():
    for t in ("lowbit_file", "gguf_model", "hf_quant"):
        os.makedirs(os.path.join(ROOT, "corpus", t), exist_ok=True)
    seeds_safetensors()
    seeds_gguf()
    seeds_ggml_blocks()
    seeds_llama2c()
    seeds_hf_config()
    seeds_tokenizers()
    seeds_text()
    lowbit = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "build", "lowbit")
    if os.access(lowbit, os.X_OK):
        seeds_from_lowbit(lowbit)
    else:
        print("make_seeds: no lowbit binary at %s; skipped .lowbit/GGUF model/HF quant seeds" % lowbit)


if __name__ == "__main__":
    main()
