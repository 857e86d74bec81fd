"""GPU check for stage 4 (and sampling): the real O1PrunerTrainer step at Qwen2.5-1.5B scale, cached vs online reference,
plus transformers `generate` (and vLLM when importable). No downloads: a random-init model from a config.

usage: python bench/gpu_check.py [--dry-run] [--steps 6] [--out results.json]
  --dry-run: a tiny model on the CPU (checks the script's logic anywhere, in well under a minute).
Prints one table; writes the rows as JSON to --out (default $OUT/gpu_check.json when $OUT is set).
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

QWEN15B = dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
               num_key_value_heads=2, max_position_embeddings=32768, tie_word_embeddings=True, rope_theta=1e6)
TINY = dict(vocab_size=4096, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=2048, tie_word_embeddings=True)


def peak_flops(dev_name: str) -> tuple[float, str]:
    """Dense bf16 peak FLOP/s used for MFU: H200 790e12 (this project's convention), H100 989e12."""
    n = dev_name.lower()
    if "h200" in n:
        return 790e12, "H200 (790 TFLOP/s)"
    if "h100" in n:
        return 989e12, "H100 (989 TFLOP/s dense bf16)"
    if "a100" in n:
        return 312e12, "A100 (312 TFLOP/s)"
    return float("nan"), f"{dev_name} (peak unknown: MFU n/a)"


def build_rows(n_seq, max_len, prompt_len, vocab, seed=0):
    """Pre-tokenised rewarded rows: prompt `prompt_len`, total lengths uniform in [max_len/2, max_len]."""
    import torch
    g = torch.Generator().manual_seed(seed)
    rows = []
    for i in range(n_seq):
        L = int(torch.randint(max_len // 2, max_len + 1, (1,), generator=g))
        ids = torch.randint(10, vocab, (L,), generator=g).tolist()
        rows.append({"input_ids": ids, "response_mask": [0] * prompt_len + [1] * (L - prompt_len),
                     "advantage": float(torch.randn(1, generator=g)), "length": L})
    return rows


class StepTimer:
    """Trainer callback: wall time of each optimiser step (CUDA-synchronised)."""
    def __new__(cls):
        from transformers import TrainerCallback
        import torch

        class _T(TrainerCallback):
            def __init__(self):
                self.times, self._t = [], None

            def on_step_begin(self, args, state, control, **kw):
                if torch.cuda.is_available(): torch.cuda.synchronize()
                self._t = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                if torch.cuda.is_available(): torch.cuda.synchronize()
                self.times.append(time.perf_counter() - self._t)
        return _T()


def trainer_variant(name, cfg_kw, rows, a, dev, ref_source, grad_ckpt=False):
    """Run O1PrunerTrainer for a few steps on one full batch of `rows`; time the steps after warm-up."""
    import datasets
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from o1_pruner.train import (MethodArguments, O1PrunerTrainer, O1TrainingArguments, RewardedCollator,
                                 _sequence_logprobs)

    torch.manual_seed(0)
    cfg = Qwen2Config(**cfg_kw, attn_implementation="sdpa")
    with torch.device(dev):
        model = Qwen2ForCausalLM(cfg)
    model.config.use_cache = False
    coll = RewardedCollator(0)
    # reference log-probs precomputed once (what stage 3 stores in the dataset)
    b = {k: v.to(dev) for k, v in coll(rows).items()}
    with torch.no_grad(), torch.autocast(dev, dtype=torch.bfloat16, enabled=dev == "cuda"):
        ref_logp = _sequence_logprobs(model, b["input_ids"], b["attention_mask"], b["response_mask"], 2048)[0].float().cpu()
    ds = datasets.Dataset.from_list([dict(r, ref_logp=float(x)) for r, x in zip(rows, ref_logp)])
    ref = None
    if ref_source == "online":
        with torch.device(dev):
            ref = Qwen2ForCausalLM(cfg).to(torch.bfloat16 if dev == "cuda" else torch.float32)
        ref.load_state_dict(model.state_dict())
    steps = a.warmup + a.steps
    args = O1TrainingArguments(
        output_dir=tempfile.mkdtemp(prefix="gpu_check_"), use_cpu=dev == "cpu", bf16=dev == "cuda",
        per_device_train_batch_size=len(rows), max_steps=steps, learning_rate=1e-6, lr_scheduler_type="constant",
        optim="adamw_torch_fused" if dev == "cuda" else "adamw_torch", logging_steps=1, save_strategy="no",
        report_to=[], disable_tqdm=True, gradient_checkpointing=grad_ckpt, train_sampling_strategy="sequential",
        dataloader_num_workers=0, seed=0)
    timer = StepTimer()
    tr = O1PrunerTrainer(model=model, args=args, train_dataset=ds, data_collator=coll, callbacks=[timer],
                         method_args=MethodArguments(logprob_chunk_size=2048), ref_model=ref, ref_source=ref_source)
    from transformers.trainer_callback import PrinterCallback
    tr.remove_callback(PrinterCallback)  # keep stdout to the table
    if dev == "cuda":
        torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()
    tr.train()
    times = sorted(timer.times[a.warmup:])
    med = times[len(times) // 2]
    real = sum(r["length"] for r in rows)
    slots = len(rows) * max(r["length"] for r in rows)
    n_params = sum(p.numel() for p in model.parameters())
    logs = [h for h in tr.state.log_history if "loss" in h]
    out = {"check": name, "step_s": med, "real_tokens_per_s": real / med, "padded_tokens_per_s": slots / med,
           "pad_frac": 1 - real / slots, "params_b": n_params / 1e9, "ratio_last": logs[-1].get("ratio"),
           "loss_finite": all(l["loss"] == l["loss"] for l in logs),
           "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if dev == "cuda" else None,
           "flops_per_step": 6 * n_params * real}
    del tr, model, ref, b
    gc.collect()
    if dev == "cuda":
        torch.cuda.empty_cache()
    return out


def generate_check(cfg_kw, dev, batch, new_tokens, prompt_len):
    """transformers `generate`, sampling (T 0.5, top-p 0.8), random prompts, fixed number of new tokens."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(0)
    with torch.device(dev):
        model = Qwen2ForCausalLM(Qwen2Config(**cfg_kw)).to(torch.bfloat16 if dev == "cuda" else torch.float32).eval()
    ids = torch.randint(10, cfg_kw["vocab_size"], (batch, prompt_len), device=dev)
    kw = dict(do_sample=True, temperature=0.5, top_p=0.8, max_new_tokens=new_tokens, min_new_tokens=new_tokens, pad_token_id=0)
    model.generate(ids[:2], **dict(kw, max_new_tokens=4, min_new_tokens=4))  # warm-up
    if dev == "cuda":
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    out = model.generate(ids, attention_mask=torch.ones_like(ids), **kw)
    if dev == "cuda":
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    n_new = (out.shape[1] - prompt_len) * batch
    res = {"check": f"generate (transformers) b{batch} x {new_tokens}", "step_s": dt, "real_tokens_per_s": n_new / dt,
           "peak_gib": torch.cuda.max_memory_allocated() / 2**30 if dev == "cuda" else None}
    del model
    gc.collect()
    if dev == "cuda":
        torch.cuda.empty_cache()
    return res


def vllm_check(cfg_kw, batch, new_tokens, prompt_len):
    """vLLM on the same random model (saved to a temp dir, no tokenizer: token-id prompts); skipped when not importable."""
    try:
        import vllm  # noqa: F401
    except Exception as e:  # not installed (the default on the GPU machine)
        return {"check": "generate (vLLM)", "skipped": f"vllm not importable ({type(e).__name__})"}
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    from vllm import LLM, SamplingParams
    d = tempfile.mkdtemp(prefix="gpu_check_vllm_")
    with torch.device("cuda"):
        Qwen2ForCausalLM(Qwen2Config(**cfg_kw)).to(torch.bfloat16).save_pretrained(d)
    torch.cuda.empty_cache()
    llm = LLM(model=d, skip_tokenizer_init=True, dtype="bfloat16", gpu_memory_utilization=0.6, enforce_eager=False)
    sp = SamplingParams(temperature=0.5, top_p=0.8, max_tokens=new_tokens, min_tokens=new_tokens, detokenize=False)
    g = torch.Generator().manual_seed(0)
    prompts = [{"prompt_token_ids": torch.randint(10, cfg_kw["vocab_size"], (prompt_len,), generator=g).tolist()} for _ in range(batch)]
    llm.generate(prompts[:2], sp)
    t = time.perf_counter()
    outs = llm.generate(prompts, sp)
    dt = time.perf_counter() - t
    n_new = sum(len(o.outputs[0].token_ids) for o in outs)
    return {"check": f"generate (vLLM) b{batch} x {new_tokens}", "step_s": dt, "real_tokens_per_s": n_new / dt}


def main(argv=None):
    p = argparse.ArgumentParser(description="stage-4 GPU check")
    p.add_argument("--dry-run", action="store_true", help="tiny model on the CPU")
    p.add_argument("--steps", type=int, default=5, help="timed trainer steps per variant")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--n-seq", type=int, default=8)
    p.add_argument("--max-len", type=int, default=1024)
    p.add_argument("--prompt-len", type=int, default=128)
    p.add_argument("--gen-batch", type=int, default=64)
    p.add_argument("--gen-tokens", type=int, default=256)
    p.add_argument("--skip", default="", help="comma list of checks to skip: cached,online,cached_gc,generate,vllm")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    import torch
    t0 = time.time()
    dev = "cuda" if torch.cuda.is_available() and not a.dry_run else "cpu"
    cfg_kw = QWEN15B if dev == "cuda" else TINY
    if dev == "cpu":
        a.max_len, a.prompt_len, a.gen_batch, a.gen_tokens, a.steps, a.warmup = 128, 16, 4, 16, 2, 1
    name = torch.cuda.get_device_name(0) if dev == "cuda" else "cpu (dry run)"
    peak, peak_note = peak_flops(name) if dev == "cuda" else (float("nan"), "cpu: MFU n/a")
    print(f"device: {name}; torch {torch.__version__}; model: {'Qwen2.5-1.5B-shaped' if dev == 'cuda' else 'tiny'} random init",
          flush=True)
    rows = build_rows(a.n_seq, a.max_len, a.prompt_len, cfg_kw["vocab_size"])
    skip = set(filter(None, a.skip.split(",")))
    results = []
    checks = [("cached", lambda: trainer_variant("train step, cached ref_logp", cfg_kw, rows, a, dev, "dataset")),
              ("online", lambda: trainer_variant("train step, online ref model", cfg_kw, rows, a, dev, "online")),
              ("cached_gc", lambda: trainer_variant("train step, cached + grad ckpt", cfg_kw, rows, a, dev, "dataset", True)),
              ("generate", lambda: generate_check(cfg_kw, dev, a.gen_batch, a.gen_tokens, a.prompt_len)),
              ("vllm", lambda: vllm_check(cfg_kw, a.gen_batch, a.gen_tokens, a.prompt_len) if dev == "cuda"
               else {"check": "generate (vLLM)", "skipped": "no GPU"})]
    for key, fn in checks:
        if key in skip:
            continue
        try:
            r = fn()
        except Exception as e:  # report and go on: one failing check must not hide the others
            traceback.print_exc()
            r = {"check": key, "error": f"{type(e).__name__}: {str(e)[:200]}"}
            if dev == "cuda":
                gc.collect(); torch.cuda.empty_cache()
        if "flops_per_step" in r and r.get("step_s"):
            r["mfu"] = r["flops_per_step"] / r["step_s"] / peak
        results.append(r)
        print(f"  done: {r.get('check')} ({time.time() - t0:.0f}s)", flush=True)
    print(f"\nO1-Pruner GPU check: {name}; MFU = 6 x params x real tokens / step time / {peak_note}")
    print(f"train batch: {a.n_seq} sequences, prompt {a.prompt_len}, lengths {a.max_len // 2}-{a.max_len} padded to the longest; "
          f"median of {a.steps} steps after {a.warmup} warm-up")
    hdr = f"| {'check':<34} | {'step s':>7} | {'real tok/s':>10} | {'peak GiB':>8} | {'MFU':>6} | note"
    print(hdr + "\n|" + "-" * (len(hdr) - 1))
    for r in results:
        note = r.get("skipped") or r.get("error") or (f"pad {r['pad_frac']:.0%}, ratio {r['ratio_last']:.4f}" if "pad_frac" in r else "")
        f = lambda k, fmt: (format(r[k], fmt) if isinstance(r.get(k), (int, float)) and r.get(k) == r.get(k) else "-")
        print(f"| {r.get('check', '?'):<34} | {f('step_s', '.3f'):>7} | {f('real_tokens_per_s', '.0f'):>10} | "
              f"{f('peak_gib', '.1f'):>8} | {(format(r['mfu'], '.1%') if r.get('mfu') == r.get('mfu') and 'mfu' in r else '-'):>6} | {note}")
    by = {r["check"]: r for r in results if "step_s" in r}
    c, o = by.get("train step, cached ref_logp"), by.get("train step, online ref model")
    if c and o:
        print(f"online / cached step time: {o['step_s'] / c['step_s']:.2f}x")
    print(f"total wall time {time.time() - t0:.0f}s")
    out = a.out or (os.path.join(os.environ["OUT"], "gpu_check.json") if os.environ.get("OUT") else None)
    if out:
        Path(out).write_text(json.dumps({"device": name, "results": results}, indent=1, default=str))
    failed = [r for r in results if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
