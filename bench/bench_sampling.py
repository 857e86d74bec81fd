"""Throughput of the transformers sampling backend on this machine vs a naive one-prompt-one-sample loop.

A random-init tiny Qwen2 (char vocabulary, 3 layers, hidden 128: ~0.8M parameters) samples chat prompts
of varied length (temperature 1, top_p 1, max 64 new tokens). Tokens/s counts generated tokens
(`Completion.num_tokens`). Usage: python bench/bench_sampling.py [--max_tokens 64] [--threads 2]
"""
from __future__ import annotations

import argparse
import random
import string
import time

import torch


def char_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
    vocab = {t: i for i, t in enumerate(specials + list(dict.fromkeys(string.printable)))}
    t = Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>"))
    t.pre_tokenizer, t.decoder = pre_tokenizers.Split(pattern="", behavior="isolated"), decoders.Fuse()
    t.add_special_tokens(specials)
    return PreTrainedTokenizerFast(tokenizer_object=t, eos_token="<|im_end|>", pad_token="<|endoftext|>", padding_side="left")


def tiny_model(tok):
    from transformers import Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=3, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    return Qwen2ForCausalLM(cfg).eval()


def prompts(n, seed=0):
    rng = random.Random(seed)
    return [f"<|im_start|>user\nSolve the problem: What is {rng.randint(1, 10**rng.randint(1, 6))} + "
            f"{rng.randint(1, 10**rng.randint(1, 6))}?{' Think.' * rng.randint(0, 4)}<|im_end|>\n<|im_start|>assistant\n"
            for _ in range(n)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max_tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch_sizes", default="1,8,32,128")
    ap.add_argument("--k", type=int, default=4)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from o1_pruner.backends import GenParams, TransformersBackend, cut_at_eos
    tok = char_tokenizer()
    model = tiny_model(tok)
    nparams = sum(p.numel() for p in model.parameters())
    be = TransformersBackend(model, tok, batch_size=1, device="cpu", progress=False)
    params = GenParams(temperature=1.0, top_p=1.0, max_tokens=a.max_tokens, seed=0)
    rows = []

    # naive: one generate call per (prompt, sample), same generation config (a rate, so a small subset suffices)
    ps = prompts(2)
    gc = be._gen_config(params, params.max_tokens)
    be.model.generate(**tok(ps[:1], return_tensors="pt", add_special_tokens=False), generation_config=gc)  # warm-up
    n_tok, t0 = 0, time.perf_counter()
    for p in ps:
        enc = tok([p], return_tensors="pt", add_special_tokens=False)
        for _ in range(a.k):
            out = be.model.generate(**enc, generation_config=gc)
            n_tok += cut_at_eos(out[0, enc.input_ids.shape[1]:].tolist(), be.eos_ids)[0]
    dt = time.perf_counter() - t0
    naive = n_tok / dt
    rows.append(("naive loop", len(ps) * a.k, n_tok, dt, naive))

    for bs in [int(x) for x in a.batch_sizes.split(",")]:
        n_prompts = max(2, (2 * bs) // a.k) if bs > 1 else 2  # at least two full batches
        ps = prompts(n_prompts, seed=bs)
        be.batch_size = bs
        t0 = time.perf_counter()
        outs = be.generate(ps, a.k, params)
        dt = time.perf_counter() - t0
        n_tok = sum(c.num_tokens for cs in outs for c in cs)
        rows.append((f"backend batch {bs}", n_prompts * a.k, n_tok, dt, n_tok / dt))

    print(f"tiny Qwen2 {nparams / 1e6:.2f}M params, CPU threads {a.threads}, max_tokens {a.max_tokens}, K={a.k}, torch {torch.__version__}")
    print(f"| {'variant':<18} | {'sequences':>9} | {'tokens':>7} | {'seconds':>8} | {'tokens/s':>9} | {'vs naive':>8} |")
    print(f"|{'-' * 20}|{'-' * 11}|{'-' * 9}|{'-' * 10}|{'-' * 11}|{'-' * 10}|")
    for name, n, t, s, r in rows:
        print(f"| {name:<18} | {n:>9} | {t:>7} | {s:>8.2f} | {r:>9.0f} | {r / naive:>7.2f}x |")


if __name__ == "__main__":
    main()
