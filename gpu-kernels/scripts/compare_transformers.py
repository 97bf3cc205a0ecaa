#!/usr/bin/env python3
"""Compare our logits (CPU and CUDA backends) with Hugging Face transformers on a tiny random Qwen3.

For a machine with PyTorch and transformers (a GPU machine for the CUDA backend):

  cargo build --release -p gpu-kernels --features cuda --example llm_cli
  python3 gpu-kernels/scripts/compare_transformers.py \
      --cli target/release/examples/llm_cli --backends cpu,cuda [--out /tmp/tiny-qwen3]

(`--cli "blastradius llm"` works too.) Steps: build a tiny `Qwen3Config`, instantiate
`AutoModelForCausalLM.from_config` with a fixed seed, randomise every norm weight (they are ones
at init, which would hide q/k-norm bugs), `save_pretrained` (safetensors) in f32 and bf16, run the
model on random ids in float64 for the reference logits, run `llm logits` with each backend and
compare. Tolerances: rel err (max abs diff / max abs ref) <= 1e-4 for the f32 file on cpu and
cuda --dtype f32, <= 2e-2 for cuda --dtype bf16. Also checks the numpy reference
(reference_numpy.py) against transformers. Prints one JSON line per comparison; exit status 1 on a
failure.
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM, Qwen3Config


def make_model(out_dir, dtype, seed, tie):
    torch.manual_seed(seed)
    cfg = Qwen3Config(
        vocab_size=257,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        max_position_embeddings=512,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=tie,
        attention_bias=False,
    )
    model = AutoModelForCausalLM.from_config(cfg).to(torch.float32)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.copy_(1.0 + 0.5 * (2 * torch.rand_like(p) - 1))
            else:
                p.copy_(torch.randn_like(p) * 0.08)
    model = model.to(dtype)
    model.save_pretrained(out_dir, safe_serialization=True)
    return model


def ref_logits(model, ids):
    m = model.to(torch.float64).eval()
    with torch.no_grad():
        out = m(torch.tensor([ids]), use_cache=False).logits[0, -1]
    return out.numpy()


def ours(cli, model_dir, ids, backend, dtype):
    cmd = cli.split() + ["logits", model_dir, "--ids", ",".join(map(str, ids)), "--backend", backend]
    if backend == "cuda":
        cmd += ["--dtype", dtype]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return None, r.stderr.strip()[-500:]
    return np.array(json.loads(r.stdout.strip().splitlines()[-1])["logits"], dtype=np.float64), None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cli", required=True)
    ap.add_argument("--backends", default="cpu,cuda")
    ap.add_argument("--out", default="/tmp/blastradius-tiny-qwen3")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    import reference_numpy  # noqa: E402

    rng = np.random.default_rng(a.seed)
    failures = 0
    for tie in (True, False):
        for fdtype, tname in ((torch.float32, "f32"), (torch.bfloat16, "bf16")):
            d = os.path.join(a.out, f"tie{int(tie)}-{tname}")
            model = make_model(d, fdtype, a.seed, tie)
            for n in (1, 5, 40):
                ids = rng.integers(0, 257, size=n).tolist()
                ref = ref_logits(model, ids)
                cfg, w = reference_numpy.load_dir(d)
                npref = reference_numpy.forward(cfg, w, ids)
                checks = [("numpy", None, npref, 1e-6)]
                for b in a.backends.split(","):
                    dts = ["f32"] if b == "cpu" else ["f32", "bf16"]
                    for dt in dts:
                        got, err = ours(a.cli, d, ids, b, dt)
                        tol = 1e-4 if dt == "f32" else 2e-2
                        checks.append((b, dt, got if got is not None else err, tol))
                for name, dt, got, tol in checks:
                    if isinstance(got, str):
                        print(json.dumps({"file": d, "n": n, "backend": name, "dtype": dt, "error": got}))
                        failures += 1
                        continue
                    rel = float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))
                    ok = rel <= tol and (dt == "bf16" or int(np.argmax(got)) == int(np.argmax(ref)))
                    failures += 0 if ok else 1
                    print(json.dumps({"file": d, "n": n, "backend": name, "dtype": dt, "rel_err": rel,
                                      "tol": tol, "ok": ok}))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
