"""Peak memory and time of `sequence_logprobs` (chunked output head) vs the naive full-logits log-softmax.

Each variant runs in its own subprocess; peak RSS (CPU) or peak CUDA memory is reported.
Usage: python bench/bench_logprobs.py [--vocab 152064] [--hidden 256] [--seq 2048] [--batch 2] [--grad]
"""
import argparse
import json
import resource
import subprocess
import sys
import time


def run(variant, a):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from o1_pruner.tokens import sequence_logprobs
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = torch.bfloat16 if dev == "cuda" else torch.float32
    torch.manual_seed(0)
    cfg = Qwen2Config(vocab_size=a.vocab, hidden_size=a.hidden, intermediate_size=2 * a.hidden, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=a.seq, tie_word_embeddings=True)
    model = Qwen2ForCausalLM(cfg).to(dev, dtype)
    ids = torch.randint(0, a.vocab, (a.batch, a.seq), device=dev)
    att = torch.ones_like(ids)
    rm = torch.zeros_like(ids); rm[:, a.seq // 4:] = 1
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if dev == "cuda": torch.cuda.reset_peak_memory_stats(); base = torch.cuda.max_memory_allocated() // 1024
    t = time.perf_counter()
    with torch.set_grad_enabled(a.grad):
        if variant == "naive":
            logits = model(input_ids=ids, attention_mask=att).logits[:, :-1].float()
            lp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None])[..., 0]
            m = rm[:, 1:].float()
            mean = (lp * m).sum(-1) / m.sum(-1)
        else:
            mean, _, _ = sequence_logprobs(model, ids, att, rm, chunk_size=a.chunk)
        if a.grad: mean.sum().backward()
    if dev == "cuda": torch.cuda.synchronize()
    dt = time.perf_counter() - t
    peak = (torch.cuda.max_memory_allocated() // 1024) if dev == "cuda" else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"variant": variant, "device": dev, "seconds": round(dt, 3),
                      "peak_extra_MiB": round((peak - base) / 1024, 1), "mean_logp": mean.float().tolist()}))


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--vocab", type=int, default=152064); p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--seq", type=int, default=2048); p.add_argument("--batch", type=int, default=2)
    p.add_argument("--chunk", type=int, default=1024); p.add_argument("--grad", action="store_true")
    p.add_argument("--variant")
    a = p.parse_args()
    if a.variant:
        run(a.variant, a); sys.exit()
    print(f"vocab {a.vocab}, hidden {a.hidden}, batch {a.batch} x seq {a.seq}, grad={a.grad}; full fp32 logits = "
          f"{a.batch * a.seq * a.vocab * 4 / 2**20:.0f} MiB")
    for v in ("naive", "chunked"):
        out = subprocess.run([sys.executable, __file__, "--variant", v] + sys.argv[1:], capture_output=True, text=True)
        print(out.stdout.strip() or out.stderr[-2000:])
