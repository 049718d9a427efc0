#!/usr/bin/python3
"""Writes lora_ref_s.json: a LoRA training trajectory on ref-s computed by PyTorch in float64
(autograd for the gradients, torch.optim.AdamW, clip_grad_norm_), for tests/train/
golden_training_test.cpp to reproduce with lowbit's fp32 training engine.

Run once by hand (needs python3-torch; the tests never do):
    /usr/bin/python3 tests/train/golden/make_lora_golden.py ../shared/models/ref-s tests/train/golden/lora_ref_s.json

The Llama forward below is written from the architecture's definition (RMSNorm, rotate-half RoPE,
grouped-query causal attention, SwiGLU), on the HF weights read straight from model.safetensors.
Adapters: rank 4, alpha 8 on all seven projections, initialised by closed formulas both sides
can compute (param k in layer-major order, projections q,k,v,o,gate,up,down):
    A[k][i] = 0.05·sin(0.7·i + 1.3·k + 0.1)     B[k][i] = 0.02·cos(0.3·i + 0.9·k)
over the row-major elements i of A [r, in] and B [out, r].
"""
import json
import math
import struct
import sys

import torch

torch.set_default_dtype(torch.float64)
PROJS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", e["dtype"]
        b, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[b:end]), dtype=torch.float32).reshape(e["shape"])
        out[name] = t.to(torch.float64)
    return out


def rms_norm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rope(x, theta):  # x [n, heads, T, hd], rotate-half pairs (i, i + hd/2)
    hd, T = x.shape[-1], x.shape[-2]
    inv = theta ** (-torch.arange(0, hd, 2, dtype=torch.float64) / hd)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)
    x1, x2 = x[..., : hd // 2], x[..., hd // 2 :]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def forward_loss(W, cfg, lora, scale, tokens, targets):
    D, nh, nkv, hd = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]
    eps, theta = cfg["rms_norm_eps"], cfg["rope_theta"]
    n, T = tokens.shape
    x = W["model.embed_tokens.weight"][tokens]

    def lin(name, l, p, inp):
        y = inp @ W[f"model.layers.{l}.{name}.{p}.weight"].T
        A, B = lora[(l, p)]
        return y + scale * (inp @ A.T) @ B.T

    mask = torch.full((T, T), float("-inf")).triu(1)
    for l in range(cfg["num_hidden_layers"]):
        h = rms_norm(x, W[f"model.layers.{l}.input_layernorm.weight"], eps)
        q = lin("self_attn", l, "q_proj", h).view(n, T, nh, hd).transpose(1, 2)
        k = lin("self_attn", l, "k_proj", h).view(n, T, nkv, hd).transpose(1, 2)
        v = lin("self_attn", l, "v_proj", h).view(n, T, nkv, hd).transpose(1, 2)
        q, k = rope(q, theta), rope(k, theta)
        k = k.repeat_interleave(nh // nkv, dim=1)
        v = v.repeat_interleave(nh // nkv, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + mask, -1)
        o = (att @ v).transpose(1, 2).reshape(n, T, nh * hd)
        x = x + lin("self_attn", l, "o_proj", o)
        h = rms_norm(x, W[f"model.layers.{l}.post_attention_layernorm.weight"], eps)
        g = torch.nn.functional.silu(lin("mlp", l, "gate_proj", h)) * lin("mlp", l, "up_proj", h)
        x = x + lin("mlp", l, "down_proj", g)
    x = rms_norm(x, W["model.norm.weight"], eps)
    logits = x @ W["lm_head.weight"].T
    return torch.nn.functional.cross_entropy(logits.reshape(n * T, -1), targets.reshape(-1), ignore_index=-1,
                                             reduction="mean")


def proj_shape(cfg, p):
    D, H = cfg["hidden_size"], cfg["intermediate_size"]
    dq, dkv = cfg["num_attention_heads"] * cfg["head_dim"], cfg["num_key_value_heads"] * cfg["head_dim"]
    return {"q_proj": (dq, D), "k_proj": (dkv, D), "v_proj": (dkv, D), "o_proj": (D, dq), "gate_proj": (H, D),
            "up_proj": (H, D), "down_proj": (D, H)}[p]


def lr_at(step, lr, warmup, total):  # HF get_cosine_schedule_with_warmup
    if step < warmup:
        return lr * step / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return lr * max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))


def main(model_dir, out_path):
    cfg = json.load(open(f"{model_dir}/config.json"))
    W = load_safetensors(f"{model_dir}/model.safetensors")
    rank, alpha = 4, 8.0
    lora, params, k = {}, [], 0
    for l in range(cfg["num_hidden_layers"]):
        for p in PROJS:
            rows, cols = proj_shape(cfg, p)
            ia, ib = torch.arange(rank * cols, dtype=torch.float64), torch.arange(rows * rank, dtype=torch.float64)
            A = (0.05 * torch.sin(0.7 * ia + 1.3 * k + 0.1)).reshape(rank, cols).requires_grad_()
            B = (0.02 * torch.cos(0.3 * ib + 0.9 * k)).reshape(rows, rank).requires_grad_()
            lora[(l, p)] = (A, B)
            params += [A, B]
            k += 1
    n_seq, T, V = 2, 24, cfg["vocab_size"]
    state = 12345
    toks, tgts = [], []
    for i in range(n_seq * T):  # a 64-bit LCG, reproduced in the test only through the JSON
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        toks.append(int(state >> 33) % V)
        state = (state * 6364136223846793005 + 1442695040888963407) % 2**64
        tgts.append(-1 if i % 7 == 3 else int(state >> 33) % V)
    tokens, targets = torch.tensor(toks).view(n_seq, T), torch.tensor(tgts).view(n_seq, T)
    lr, wd, clip, warmup, steps = 3e-3, 0.01, 1.0, 2, 10
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd)
    log = []
    for s in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(s, lr, warmup, steps)
        opt.zero_grad()
        loss = forward_loss(W, cfg, lora, alpha / rank, tokens, targets)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        log.append({"loss": loss.item(), "grad_norm": norm.item()})
        print(s, loss.item(), norm.item())
    final_loss = forward_loss(W, cfg, lora, alpha / rank, tokens, targets).item()
    out = {"what": "LoRA training trajectory on ref-s, PyTorch float64 (make_lora_golden.py)",
           "torch_version": torch.__version__, "rank": rank, "alpha": alpha, "lr": lr, "weight_decay": wd,
           "clip": clip, "warmup": warmup, "schedule": "cosine", "steps": steps, "n_seq": n_seq, "len": T,
           "tokens": toks, "targets": tgts, "log": log, "final_loss": final_loss}
    with open(out_path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
