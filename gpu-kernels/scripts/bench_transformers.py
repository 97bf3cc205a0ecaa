#!/usr/bin/env python3
"""The transformers side of the LLM benchmark (examples/llm_bench.rs is ours), same workload.

B prompts of P shared-prefix tokens + S own tokens, N new tokens each, random Qwen3-0.6B-shaped
weights in bf16 on one GPU, attention implementations `eager` and `sdpa`. transformers has no
prefix sharing, so every prompt is processed in full (P + S tokens). Prints one JSON line per
(attn, batch) with the same fields as llm_bench: prefill_s (max_new_tokens=1), total_s
(max_new_tokens=N, min_new_tokens=N), prefill_tok_s, decode_tok_s, e2e_new_tok_s.

  python3 gpu-kernels/scripts/bench_transformers.py --batches 1,64,1024 --prefix-len 512 \
      --suffix-len 64 --new-tokens 32
Then compare e2e_new_tok_s with llm_bench's prefix_shared=true lines (target: >= 3x).
Large batches may run out of memory with eager attention; those lines report the error.
"""
import argparse
import json
import time

import torch
from transformers import AutoModelForCausalLM, Qwen3Config


def qwen3_06b():
    return Qwen3Config(
        vocab_size=151936,
        hidden_size=1024,
        intermediate_size=3072,
        num_hidden_layers=28,
        num_attention_heads=16,
        num_key_value_heads=8,
        head_dim=128,
        max_position_embeddings=40960,
        rope_theta=1_000_000.0,
        rms_norm_eps=1e-6,
        tie_word_embeddings=True,
    )


def timed(model, ids, mask, n):
    torch.cuda.synchronize()
    t = time.perf_counter()
    with torch.no_grad():
        model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n,
                       do_sample=True, temperature=0.8, top_p=0.95, pad_token_id=0)
    torch.cuda.synchronize()
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batches", default="1,64,1024")
    ap.add_argument("--prefix-len", type=int, default=512)
    ap.add_argument("--suffix-len", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--attn", default="eager,sdpa")
    a = ap.parse_args()
    torch.manual_seed(0)
    cfg = qwen3_06b()
    for attn in a.attn.split(","):
        model = AutoModelForCausalLM.from_config(cfg, attn_implementation=attn).to(torch.bfloat16).cuda().eval()
        P, S, N = a.prefix_len, a.suffix_len, a.new_tokens
        prefix = torch.randint(0, cfg.vocab_size, (P,))
        timed(model, torch.cat([prefix, torch.randint(0, cfg.vocab_size, (S,))])[None].cuda(),
              torch.ones(1, P + S, dtype=torch.long).cuda(), 2)  # warm-up
        for b in [int(x) for x in a.batches.split(",")]:
            ids = torch.cat([prefix.expand(b, P), torch.randint(0, cfg.vocab_size, (b, S))], 1).cuda()
            mask = torch.ones_like(ids)
            line = {"backend": f"transformers-{attn}", "size": "qwen3-0.6b", "dtype": "bf16", "batch": b,
                    "prefix_len": P, "suffix_len": S, "new_tokens": N, "prefix_shared": False}
            try:
                p = timed(model, ids, mask, 1)
                t = timed(model, ids, mask, N)
                d = max(t - p, 1e-9)
                line.update({"prefill_s": p, "total_s": t, "prefill_tok_s": b * (P + S) / p,
                             "decode_tok_s": b * (N - 1) / d, "e2e_new_tok_s": b * N / t})
            except torch.cuda.OutOfMemoryError as e:  # noqa: PERF203
                line["error"] = f"OOM: {str(e)[:200]}"
                torch.cuda.empty_cache()
            print(json.dumps(line), flush=True)
        del model
        torch.cuda.empty_cache()


if __name__ == "__main__":
    main()
