"""Benchmark the O1-Pruner training step on this machine: cached reference log-probs vs an online reference model
(the reference code's behaviour), and chunked log-probs vs full float32 logits.

Each variant runs in its own subprocess (variants interleaved over --rounds, best round kept, since this CPU is
shared). Memory method (CPU): after a warm-up step (which allocates the optimiser state) the kernel's peak-RSS mark
is reset (`echo 5 > /proc/self/clear_refs`) and VmRSS read ("resident": model + optimiser state + online reference
model); after the timed steps VmHWM - resident is the "step peak": what the step itself needs on top (activations,
logits, gradients). Without clear_refs it falls back to the getrusage ru_maxrss delta, which the warm-up can hide.
tracemalloc cannot see torch's allocator. On CUDA the script also reports torch.cuda.max_memory_allocated.

usage: python bench/bench_train.py [--steps 5] [--hidden 256] [--layers 4] [--vocab 32000] [--batch 8] [--max-len 512]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _proc_status_mib(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak_rss():
    """Reset the kernel's peak-RSS mark (VmHWM) of this process (Linux >= 4.0); False where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def make_batch(vocab, batch, max_len, prompt_len, seed=0):
    """Random token batch: prompt `prompt_len`, total lengths uniform in [max_len/2, max_len], right padded."""
    import torch
    g = torch.Generator().manual_seed(seed)
    lens = torch.randint(max_len // 2, max_len + 1, (batch,), generator=g)
    ids = torch.randint(10, vocab, (batch, max_len), generator=g)
    pos = torch.arange(max_len)[None]
    am = (pos < lens[:, None]).long()
    rm = ((pos >= prompt_len) & (pos < lens[:, None])).long()
    ids = ids * am
    adv = torch.randn(batch, generator=g)
    return {"input_ids": ids, "attention_mask": am, "response_mask": rm, "advantage": adv}


def full_logits_logprobs(model, input_ids, attention_mask, response_mask, chunk_size=None):
    """The naive way: full float32 logits over the whole batch, then log-softmax (for comparison)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits.float()
    lp = logits[:, :-1].log_softmax(-1).gather(-1, input_ids[:, 1:, None]).squeeze(-1)
    m = (response_mask[:, 1:] * attention_mask[:, 1:]).float()
    s = (lp * m).sum(1)
    n = m.sum(1)
    return s / n.clamp(min=1), s, n


def run_variant(variant, a):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from o1_pruner.tokens import sequence_logprobs
    from o1_pruner.train import o1_pruner_loss

    torch.manual_seed(0)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = Qwen2Config(vocab_size=a.vocab, hidden_size=a.hidden, intermediate_size=a.hidden * 3, num_hidden_layers=a.layers,
                      num_attention_heads=max(a.hidden // 64, 2), num_key_value_heads=max(a.hidden // 128, 1),
                      max_position_embeddings=4096, tie_word_embeddings=True)
    model = Qwen2ForCausalLM(cfg).to(dev)
    model.config.use_cache = False
    b = {k: v.to(dev) for k, v in make_batch(a.vocab, a.batch, a.max_len, a.prompt_len).items()}
    logprobs = full_logits_logprobs if variant == "cached_full_logits" else sequence_logprobs
    ref = None
    with torch.no_grad():
        ref_logp = sequence_logprobs(model, b["input_ids"], b["attention_mask"], b["response_mask"], a.chunk)[0]
    if variant == "online":
        ref = Qwen2ForCausalLM(cfg).to(dev).eval()
        ref.load_state_dict(model.state_dict())
        for p in ref.parameters():
            p.requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model.train()

    def step():
        r = ref_logp
        if ref is not None:
            with torch.no_grad():
                r = sequence_logprobs(ref, b["input_ids"], b["attention_mask"], b["response_mask"], a.chunk)[0]
        mean_lp, sum_lp, n = logprobs(model, b["input_ids"], b["attention_mask"], b["response_mask"], a.chunk)
        loss, _ = o1_pruner_loss(mean_lp, sum_lp, n, r, b["advantage"])
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    step()  # warm-up (allocates optimiser state)
    if dev == "cuda":
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    import gc; gc.collect()
    reset_ok = _reset_peak_rss()
    rss0 = _proc_status_mib("VmRSS")
    times = []
    for _ in range(a.steps):
        t = time.perf_counter()
        step()
        if dev == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    real = int(b["attention_mask"].sum())
    times.sort()
    med = times[len(times) // 2]
    out = {"variant": variant, "device": dev, "step_s_median": med, "step_s_min": times[0],
           "real_tokens_per_s": real / med, "resident_mib": rss0,
           "step_peak_mib": (_proc_status_mib("VmHWM") if reset_ok else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024) - rss0,
           "params_m": sum(p.numel() for p in model.parameters()) / 1e6, "real_tokens": real,
           "padded_slots": b["attention_mask"].numel()}
    if dev == "cuda":
        out["cuda_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--vocab", type=int, default=16384)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--max-len", type=int, default=384)
    p.add_argument("--prompt-len", type=int, default=64)
    p.add_argument("--chunk", type=int, default=1024)
    p.add_argument("--variants", default="cached,online,cached_full_logits")
    p.add_argument("--_one", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a._one:
        print("RESULT " + json.dumps(run_variant(a._one, a)))
        return 0
    best = {}
    passthrough = [x for x in (argv if argv is not None else sys.argv[1:])]
    for _ in range(a.rounds):
        for v in a.variants.split(","):
            cp = subprocess.run([sys.executable, __file__, *passthrough, "--_one", v], capture_output=True, text=True,
                                env=dict(os.environ, PYTHONPATH=str(REPO)))
            line = [l for l in cp.stdout.splitlines() if l.startswith("RESULT ")]
            if cp.returncode or not line:
                print(f"{v}: failed\n{cp.stderr[-2000:]}")
                continue
            r = json.loads(line[0][7:])
            if v not in best or r["step_s_median"] < best[v]["step_s_median"]:
                best[v] = r
    rows = list(best.values())
    if not rows:
        return 1
    r0 = rows[0]
    print(f"model {r0['params_m']:.1f}M params, batch {a.batch} x up to {a.max_len} tokens "
          f"({r0['real_tokens']} real of {r0['padded_slots']} slots), device {r0['device']}, median of {a.steps} steps, best of {a.rounds} rounds")
    print(f"{'variant':<20} {'step s':>8} {'tokens/s':>9} {'resident MiB':>13} {'step peak MiB':>14}")
    for r in rows:
        print(f"{r['variant']:<20} {r['step_s_median']:>8.3f} {r['real_tokens_per_s']:>9.0f} {r['resident_mib']:>13.0f} "
              f"{r['step_peak_mib']:>14.0f}" + (f"  cuda peak {r['cuda_peak_gib']:.2f} GiB" if "cuda_peak_gib" in r else ""))
    by = {r["variant"]: r for r in rows}
    if "cached" in by and "online" in by:
        print(f"online / cached step time: {by['online']['step_s_median'] / by['cached']['step_s_median']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
