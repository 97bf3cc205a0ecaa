#!/usr/bin/env python3
"""An independent numpy implementation of the Hugging Face Qwen3 / Qwen2 / Llama forward pass.

Reads a model directory (config.json + model.safetensors or a sharded index; F32/BF16/F16),
computes the last position's logits in float64 and compares them with
`llm_cli logits MODEL_DIR --ids ...` (the Rust CLI) when --cli is given.

Follows transformers' modeling code: RMSNorm (x * rsqrt(mean(x^2) + eps) * w), q/k/v projections
(+ bias for Qwen2 / attention_bias), Qwen3's per-head q_norm/k_norm before RoPE, RoPE with
rotate_half (half-split), GQA by repeating kv heads, causal softmax attention with
1/sqrt(head_dim), o_proj, SwiGLU MLP, final norm, lm_head (or the tied embedding).

Usage:
  python3 reference_numpy.py MODEL_DIR --ids 1,2,3 [--cli PATH_TO_llm_cli] [--tol 1e-4]
Needs only numpy.
"""
import argparse
import json
import os
import struct
import subprocess
import sys

import numpy as np


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[base + b : base + e]
        shape = info["shape"]
        dt = info["dtype"]
        if dt == "F32":
            arr = np.frombuffer(raw, dtype="<f4")
        elif dt == "F16":
            arr = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dt == "BF16":
            arr = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"{name}: dtype {dt}")
        out[name] = arr.reshape(shape).astype(np.float64)
    return out


def load_dir(d):
    cfg = json.load(open(os.path.join(d, "config.json")))
    single = os.path.join(d, "model.safetensors")
    if os.path.exists(single):
        w = load_safetensors(single)
    else:
        idx = json.load(open(os.path.join(d, "model.safetensors.index.json")))
        w = {}
        for shard in sorted(set(idx["weight_map"].values())):
            w.update(load_safetensors(os.path.join(d, shard)))
    return cfg, w


def rms(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def forward(cfg, w, ids):
    h = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads", nh)
    hd = cfg.get("head_dim") or h // nh
    eps = cfg.get("rms_norm_eps", 1e-6)
    theta = cfg.get("rope_theta") or (cfg.get("rope_parameters") or {}).get("rope_theta", 10000.0)
    qwen3 = cfg["model_type"] == "qwen3"
    bias = cfg["model_type"] == "qwen2" or cfg.get("attention_bias", False)
    interleaved = cfg.get("rope_interleaved", False)
    T = len(ids)
    x = w["model.embed_tokens.weight"][ids]
    # RoPE in float32 like transformers (inv_freq and angles f32), applied in float64.
    inv = (1.0 / (np.float32(theta) ** (np.arange(0, hd, 2, dtype=np.float32) / np.float32(hd)))).astype(np.float32)
    ang = (np.arange(T, dtype=np.float32)[:, None] * inv[None, :]).astype(np.float64)
    cos, sin = np.cos(ang), np.sin(ang)

    def rope(v):  # v: [T, heads, hd]
        if interleaved:
            x0, x1 = v[..., 0::2], v[..., 1::2]
            o = np.empty_like(v)
            o[..., 0::2] = x0 * cos[:, None, :] - x1 * sin[:, None, :]
            o[..., 1::2] = x1 * cos[:, None, :] + x0 * sin[:, None, :]
            return o
        c = np.concatenate([cos, cos], -1)[:, None, :]
        s = np.concatenate([sin, sin], -1)[:, None, :]
        rot = np.concatenate([-v[..., hd // 2 :], v[..., : hd // 2]], -1)
        return v * c + rot * s

    mask = np.triu(np.full((T, T), -np.inf), 1)
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        a = rms(x, w[p + "input_layernorm.weight"], eps)
        q = a @ w[p + "self_attn.q_proj.weight"].T
        k = a @ w[p + "self_attn.k_proj.weight"].T
        v = a @ w[p + "self_attn.v_proj.weight"].T
        if bias:
            q += w[p + "self_attn.q_proj.bias"]
            k += w[p + "self_attn.k_proj.bias"]
            v += w[p + "self_attn.v_proj.bias"]
        q = q.reshape(T, nh, hd)
        k = k.reshape(T, nkv, hd)
        v = v.reshape(T, nkv, hd)
        if qwen3:
            q = rms(q, w[p + "self_attn.q_norm.weight"], eps)
            k = rms(k, w[p + "self_attn.k_norm.weight"], eps)
        q, k = rope(q), rope(k)
        rep = nh // nkv
        k = np.repeat(k, rep, axis=1)
        v = np.repeat(v, rep, axis=1)
        sc = np.einsum("thd,shd->hts", q, k) / np.sqrt(hd) + mask[None]
        sc = np.exp(sc - sc.max(-1, keepdims=True))
        sc /= sc.sum(-1, keepdims=True)
        o = np.einsum("hts,shd->thd", sc, v).reshape(T, nh * hd)
        x = x + o @ w[p + "self_attn.o_proj.weight"].T
        a = rms(x, w[p + "post_attention_layernorm.weight"], eps)
        g = a @ w[p + "mlp.gate_proj.weight"].T
        u = a @ w[p + "mlp.up_proj.weight"].T
        x = x + (g / (1.0 + np.exp(-g)) * u) @ w[p + "mlp.down_proj.weight"].T
    x = rms(x[-1], w["model.norm.weight"], eps)
    tie = cfg.get("tie_word_embeddings")
    out_w = w["lm_head.weight"] if ("lm_head.weight" in w and tie is not True) else w["model.embed_tokens.weight"]
    return out_w @ x


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("--ids", required=True)
    ap.add_argument("--cli", help="path of the llm_cli example binary (or `blastradius llm`)")
    ap.add_argument("--backend", default="cpu")
    ap.add_argument("--tol", type=float, default=1e-4)
    a = ap.parse_args()
    ids = [int(t) for t in a.ids.split(",")]
    cfg, w = load_dir(a.model_dir)
    ref = forward(cfg, w, ids)
    if not a.cli:
        print(json.dumps({"argmax": int(np.argmax(ref)), "logits": ref.tolist()}))
        return
    cmd = a.cli.split() + ["logits", a.model_dir, "--ids", a.ids, "--backend", a.backend]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
    ours = np.array(json.loads(out)["logits"], dtype=np.float64)
    rel = float(np.max(np.abs(ours - ref)) / max(np.max(np.abs(ref)), 1e-12))
    ok = rel <= a.tol and int(np.argmax(ours)) == int(np.argmax(ref))
    print(json.dumps({"model": a.model_dir, "backend": a.backend, "rel_err": rel, "argmax_ref": int(np.argmax(ref)),
                      "argmax_ours": int(np.argmax(ours)), "ok": ok}))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
