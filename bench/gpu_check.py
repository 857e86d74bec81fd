"""GPU check of the library's own code at Qwen2.5-1.5B shape (random init, no downloads), one table, JSON rows.

Rows (each wrapped: a failing row records its error and the others still run):
  step0-padded / step0-packed   ref_logp scored by `score_reference_logprobs` (float32 weights + autocast bf16, the
                                numerics `training_numerics` gives the trainer), then one O1PrunerTrainer step: its
                                logged step-0 `ratio` (1 within 1e-4 when attention is padding-invariant)
  train-{padded,packed}-{cached,online}[-ckpt]
                                O1PrunerTrainer steps (bf16 mixed precision, fused AdamW), timed with CUDA sync
                                after warm-up; `O1PrunerConfig(packing=True)` for packed; gradient checkpointing
  score-bf16 / score-fp32-autocast
                                `score_reference_logprobs` throughput (tokens/s of prompt + response)
  generate-transformers / generate-vllm
                                TransformersBackend / VLLMBackend sampling (T 0.5, top-p 0.8), new tokens/s
MFU = k x params x real (non-pad) tokens / time / peak bf16 FLOP/s, k = 6 (train) or 2 (forward only).

usage: python bench/gpu_check.py [--dry-run] [--budget-s 420] [--only ROW,ROW] [--out FILE]
  --dry-run: every row at tiny size on the CPU (tests/test_gpu_check.py runs it: the script cannot rot).
Writes bench/results/gpu_check_<machine>.json (dry run: in the temp dir; or --out) after every row, and a copy to
$OUT when it is set.
On a bare GPU machine use bench/gpu_check.sh (environment, versions, the 8-minute budget).
"""
from __future__ import annotations

import argparse
import copy
import gc
import json
import math
import os
import re
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

QWEN15B = dict(vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_hidden_layers=28,
               num_attention_heads=12, num_key_value_heads=2, max_position_embeddings=32768, tie_word_embeddings=True,
               rope_theta=1e6)
TINY = dict(vocab_size=2048, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True)
SHAPES = {  # batch shapes: PERFORMANCE.md's on the GPU, a few short sequences in the dry run
    "gpu": dict(model=QWEN15B, n_seq=8, min_len=512, max_len=1024, prompt=128, warmup=2, steps=5,
                score_rows=64, score_batch=8, gen_batch=64, gen_prompt=128, gen_new=256),
    "dry": dict(model=TINY, n_seq=4, min_len=32, max_len=64, prompt=16, warmup=1, steps=1,
                score_rows=8, score_batch=4, gen_batch=4, gen_prompt=16, gen_new=8)}
PEAK_BF16 = (("h200", 790e12, "H200, 790 TFLOP/s (bf16 matmul measured here)"),
             ("h100", 989e12, "H100, 989 TFLOP/s (dense bf16, datasheet)"))
TARGET_MFU, TARGET_LEAN_GIB = 0.45, 30.0
PAD, EOS = "<|endoftext|>", "<|im_end|>"
RATIO_TOL = 1e-4


def peak_flops(device_name:str, override_tflops:float|None=None) -> tuple[float, str]:
    "Peak bf16 FLOP/s used for MFU, and how it was chosen."
    if override_tflops: return override_tflops * 1e12, f"{override_tflops:g} TFLOP/s (--peak-tflops)"
    for key, flops, note in PEAK_BF16:
        if key in device_name.lower(): return flops, note
    return float("nan"), f"{device_name}: peak unknown, MFU n/a (pass --peak-tflops)"


def word_tokenizer(vocab_size:int):
    "A word-level tokenizer built in code: token `w<i>` is id i (0 pad, 1 end of turn), a plain chat template."
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    vocab = {PAD: 0, EOS: 1, **{f"w{i}": i for i in range(2, vocab_size)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=PAD))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.add_special_tokens([PAD, EOS])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS, unk_token=PAD)
    fast.chat_template = "{% for m in messages %}{{ m['content'] }} {% endfor %}"
    return fast


def words(ids) -> str:
    return " ".join(f"w{int(i)}" for i in ids)


def spread_lengths(n:int, lo:int, hi:int) -> list[int]:
    "n total lengths evenly spread over [lo, hi] (the longest is hi: a padded batch is hi wide)."
    return [round(lo + (hi - lo) * i / max(n - 1, 1)) for i in range(n)]


def rewarded_rows(lengths:list[int], prompt:int, vocab:int, seed:int=0) -> list[dict]:
    "Rows of a rewarded dataset (messages, completion, advantage) whose prompt + completion has the given lengths."
    import numpy as np
    g = np.random.default_rng(seed)
    rows = []
    for i, L in enumerate(lengths):
        ids = g.integers(2, vocab, L)
        rows.append({"problem_id": f"p{i}", "sample_idx": 0, "completion": words(ids[prompt:]),
                     "messages": [{"role": "user", "content": words(ids[:prompt])}],
                     "advantage": float(g.standard_normal())})
    return rows


class Ctx:
    "What the rows share: device, shape, attention implementation, tokenizer, the scored training rows."
    def __init__(self, a):
        import torch
        self.dry = a.dry_run
        self.dev = "cpu" if self.dry else "cuda"
        self.shape = SHAPES["dry" if self.dry else "gpu"]
        self.cfg = self.shape["model"]
        self.attn = self._attention(a.attn)
        self.name = "cpu (dry run)" if self.dry else torch.cuda.get_device_name(0)
        self.machine = "cpu-dryrun" if self.dry else re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-")
        self.peak, self.peak_note = peak_flops(self.name, a.peak_tflops)
        if self.dry and not a.peak_tflops:
            self.peak, self.peak_note = 1e12, "a nominal 1 TFLOP/s (dry run: it checks the arithmetic, not the speed)"
        self.tok = word_tokenizer(self.cfg["vocab_size"])
        s = self.shape
        self.lengths = spread_lengths(s["n_seq"], s["min_len"], s["max_len"])
        self.rows = rewarded_rows(self.lengths, s["prompt"], self.cfg["vocab_size"])
        self.prepared, self.scored_numerics, self.scored_weights, self.n_params = None, None, None, None
        import datasets
        import transformers
        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()

    def _attention(self, want:str) -> str:
        if want != "auto": return want
        from transformers.utils import is_flash_attn_2_available
        return "flash_attention_2" if self.dev == "cuda" and is_flash_attn_2_available() else "sdpa"

    def sync(self):
        import torch
        if self.dev == "cuda": torch.cuda.synchronize()

    def model(self, dtype=None, seed:int=0):
        "The random-init Qwen2 model, seeded: every call gives the same weights (float32 unless `dtype`)."
        import torch
        from transformers import Qwen2Config, Qwen2ForCausalLM
        torch.manual_seed(seed)
        cfg = Qwen2Config(**self.cfg, attn_implementation=self.attn, use_cache=False, pad_token_id=0, eos_token_id=1,
                          bos_token_id=None)
        with torch.device(self.dev):
            m = Qwen2ForCausalLM(cfg)
        m.generation_config.eos_token_id, m.generation_config.pad_token_id = 1, 0
        self.n_params = sum(p.numel() for p in m.parameters())
        self.weights_sum = sum(float(p.detach().double().sum()) for p in m.parameters())
        return m.to(dtype) if dtype is not None else m

    def training_rows(self, model):
        "The batch's rows scored by `score_reference_logprobs` under the trainer's numerics, then tokenised for it."
        if self.prepared is None:
            import datasets
            from o1_pruner.reward import score_reference_logprobs
            from o1_pruner.tokens import model_numerics
            from o1_pruner.train import prepare_rewarded_dataset
            ds = datasets.Dataset.from_list(self.rows)
            s = self.shape
            ds = score_reference_logprobs(ds, model, self.tok, cutoff=s["max_len"], batch_size=max(s["n_seq"] // 2, 1),
                                          autocast="bfloat16", progress=False)
            self.scored_numerics, self.scored_weights = model_numerics(model, "bfloat16"), self.weights_sum
            self.prepared = prepare_rewarded_dataset(ds, self.tok, s["max_len"], name="gpu_check rows")
        return self.prepared

    def reset_peak(self):
        import torch
        gc.collect()
        if self.dev == "cuda": torch.cuda.empty_cache(); torch.cuda.reset_peak_memory_stats()

    def peak_gib(self):
        import torch
        return torch.cuda.max_memory_allocated() / 2**30 if self.dev == "cuda" else None

    def allocated_gib(self):
        import torch
        return torch.cuda.memory_allocated() / 2**30 if self.dev == "cuda" else None

    def free(self):
        import torch
        gc.collect()
        if self.dev == "cuda": torch.cuda.empty_cache()


def step_timer(ctx:Ctx):
    "A Trainer callback that records each optimiser step's wall time (CUDA-synchronised at both ends)."
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self): self.times, self._t = [], None
        def on_step_begin(self, args, state, control, **kw): ctx.sync(); self._t = time.perf_counter()
        def on_step_end(self, args, state, control, **kw): ctx.sync(); self.times.append(time.perf_counter() - self._t)
    return StepTimer()


def run_trainer(ctx:Ctx, model, ds, packed:bool, online:bool, ckpt:bool, max_steps:int):
    "Train `model` on the batch for `max_steps` with the library's trainer, collator and arguments."
    from transformers.trainer_callback import PrinterCallback
    from o1_pruner.train import O1PrunerConfig, O1PrunerTrainer
    args = O1PrunerConfig(
        output_dir=tempfile.mkdtemp(prefix="gpu_check_"), use_cpu=ctx.dev == "cpu", bf16=True,
        per_device_train_batch_size=len(ds), max_steps=max_steps, learning_rate=1e-6, lr_scheduler_type="constant",
        optim="adamw_torch_fused" if ctx.dev == "cuda" else "adamw_torch", logging_steps=1, save_strategy="no",
        report_to=[], disable_tqdm=True, gradient_checkpointing=ckpt, dataloader_num_workers=0, seed=0,
        packing=packed, ref_source="online" if online else "dataset")
    ref = copy.deepcopy(model) if online else None
    timer = step_timer(ctx)
    tr = O1PrunerTrainer(model, args=args, train_dataset=ds, callbacks=[timer], processing_class=ctx.tok, ref_model=ref)
    tr.remove_callback(PrinterCallback)
    ctx.reset_peak()
    tr.train()
    return tr, timer, args


def logged(tr) -> list[dict]:
    return [h for h in tr.state.log_history if "ratio" in h]


def row_step0(ctx:Ctx, packed:bool) -> dict:
    "Step-0 ratio: ref_logp scored in the trainer's numerics, then one trainer step; its logged ratio."
    from o1_pruner.models import training_numerics
    from o1_pruner.train import check_numerics
    model = ctx.model()
    ds = ctx.training_rows(model)
    same = ctx.weights_sum == ctx.scored_weights
    tr, timer, args = run_trainer(ctx, model, ds, packed, online=False, ckpt=False, max_steps=1)
    now = training_numerics(args, model.config._attn_implementation)
    check_numerics(ctx.scored_numerics, now, "gpu_check rows")
    r0 = logged(tr)[0]["ratio"]
    ok = abs(r0 - 1) <= RATIO_TOL
    del tr, model
    return {"ratio_step0": r0, "ratio_err": abs(r0 - 1), "ratio_ok": ok, "numerics": now,
            "scored_numerics": ctx.scored_numerics, "weights_as_scored": same, "first_step_s": timer.times[0],
            "note": f"ratio {r0:.6f}, |r-1| {abs(r0 - 1):.1e} {'<=' if ok else '>'} {RATIO_TOL:g} "
                    f"({'ok' if ok else 'NOT padding-invariant'}); scored in batches of {max(len(ds) // 2, 1)}"}


def row_train(ctx:Ctx, packed:bool, online:bool, ckpt:bool) -> dict:
    "Median optimiser-step time of the real trainer after warm-up; real tokens/s, peak memory, MFU."
    s = ctx.shape
    model = ctx.model()
    ds = ctx.training_rows(model)
    tr, timer, _ = run_trainer(ctx, model, ds, packed, online, ckpt, s["warmup"] + s["steps"])
    times = sorted(timer.times[s["warmup"]:])
    step = times[len(times) // 2]
    real, slots = sum(ds["length"]), len(ds) * max(ds["length"])
    logs = logged(tr)
    out = {"step_s": step, "tokens_per_s": real / step, "peak_gib": ctx.peak_gib(),
           "mfu": 6 * ctx.n_params * real / step / ctx.peak, "step_times": timer.times, "real_tokens": real,
           "pad_frac": 0.0 if packed else 1 - real / slots, "ratio_step0": logs[0]["ratio"],
           "logged_tokens_per_s": logs[-1].get("tokens_per_s"),
           "loss_finite": all(math.isfinite(h["loss"]) for h in logs),
           "note": f"pad {0 if packed else 1 - real / slots:.0%}, ratio0 {logs[0]['ratio']:.5f}"}
    del tr, model
    return out


def row_score(ctx:Ctx, autocast:str|None) -> dict:
    "Reference-scoring throughput of `score_reference_logprobs`: bf16 weights, or float32 weights under autocast."
    import datasets
    import torch
    from o1_pruner.reward import score_reference_logprobs
    s = ctx.shape
    model = ctx.model(None if autocast else torch.bfloat16).eval()
    lengths = (spread_lengths(s["n_seq"], s["min_len"], s["max_len"]) * s["score_rows"])[:s["score_rows"]]
    ds = datasets.Dataset.from_list(rewarded_rows(lengths, s["prompt"], ctx.cfg["vocab_size"], seed=1))
    kw = dict(cutoff=s["max_len"], batch_size=s["score_batch"], autocast=autocast, progress=False)
    score_reference_logprobs(ds.select(range(s["score_batch"])), model, ctx.tok, **kw)   # warm-up
    ctx.reset_peak()
    t = time.perf_counter()
    out = score_reference_logprobs(ds, model, ctx.tok, **kw)
    ctx.sync()
    dt = time.perf_counter() - t
    tokens = sum(lengths)
    finite = all(math.isfinite(x) for x in out["ref_logp"])
    del model
    return {"step_s": dt, "tokens_per_s": tokens / dt, "peak_gib": ctx.peak_gib(),
            "mfu": 2 * ctx.n_params * tokens / dt / ctx.peak,
            "tokens": tokens, "ref_logp_finite": finite,
            "note": f"{len(lengths)} rows in batches of {s['score_batch']}, tokenising included"}


def gen_prompts(ctx:Ctx) -> list[str]:
    import numpy as np
    g = np.random.default_rng(2)
    s = ctx.shape
    return [words(g.integers(2, ctx.cfg["vocab_size"], s["gen_prompt"])) for _ in range(s["gen_batch"])]


def time_generate(ctx:Ctx, backend, prompts:list[str]) -> dict:
    "Warm up, then time one `generate` of every prompt (one sample each); new tokens per second."
    from o1_pruner.backends import GenParams
    s = ctx.shape
    backend.generate(prompts[:2], 1, GenParams(temperature=0.5, top_p=0.8, max_tokens=4, seed=0))
    ctx.reset_peak()
    t = time.perf_counter()
    outs = backend.generate(prompts, 1, GenParams(temperature=0.5, top_p=0.8, max_tokens=s["gen_new"], seed=0))
    ctx.sync()
    dt = time.perf_counter() - t
    new = sum(c.num_tokens for o in outs for c in o)
    return {"step_s": dt, "tokens_per_s": new / dt, "peak_gib": ctx.peak_gib(),
            "mfu": 2 * ctx.n_params * new / dt / ctx.peak, "new_tokens": new,
            "note": f"batch {len(prompts)}, prompt {s['gen_prompt']}, {s['gen_new']} new, T 0.5 top-p 0.8"}


def row_generate_transformers(ctx:Ctx) -> dict:
    import torch
    from o1_pruner.backends import TransformersBackend
    dtype = "float32" if ctx.dry else "bfloat16"
    be = TransformersBackend(ctx.model(getattr(torch, dtype)), ctx.tok, batch_size=ctx.shape["gen_batch"],
                             device=ctx.dev, dtype=dtype, progress=False)
    out = time_generate(ctx, be, gen_prompts(ctx))
    del be
    return out


def save_model_folder(ctx:Ctx) -> tuple[str, str]:
    "Folders of the random-init bf16 model and of the word tokenizer, which vLLM and the Auto classes can load."
    import torch
    d, t = tempfile.mkdtemp(prefix="gpu_check_model_"), tempfile.mkdtemp(prefix="gpu_check_tok_")
    m = ctx.model(torch.bfloat16)
    m.save_pretrained(d)
    ctx.tok.save_pretrained(t)   # its own folder: beside a qwen2 config.json, AutoTokenizer builds a Qwen2 BPE instead
    del m
    ctx.free()
    return d, t


def row_generate_vllm(ctx:Ctx) -> dict:
    "VLLMBackend on the saved folder; where vLLM cannot run, the folder is checked and the row skipped."
    from o1_pruner.backends import VLLMBackend, vllm_available
    d, tok_dir = save_model_folder(ctx)
    if ctx.dry or not vllm_available():
        from transformers import AutoModelForCausalLM, AutoTokenizer
        ids = AutoTokenizer.from_pretrained(tok_dir)(words([5, 7]))["input_ids"]
        if ids != [5, 7]: raise ValueError(f"the saved tokenizer reads 'w5 w7' as {ids}, not [5, 7]")
        AutoModelForCausalLM.from_pretrained(d)
        why = "dry run" if ctx.dry else "vllm not importable"
        return {"skipped": f"{why}: model and tokenizer folders saved and reloaded: ok"}
    t = time.perf_counter()
    be = VLLMBackend(d, tokenizer=tok_dir, dtype="bfloat16", gpu_memory_utilization=0.5,
                     max_model_len=ctx.shape["gen_prompt"] + ctx.shape["gen_new"] + 16, progress=False)
    start = time.perf_counter() - t
    out = time_generate(ctx, be, gen_prompts(ctx))
    out["engine_start_s"], out["note"] = start, out["note"] + f"; engine start {start:.0f}s"
    out["peak_gib"] = None   # vLLM's memory is its own reservation (gpu_memory_utilization), not this process's peak
    del be
    return out


ROWS = {  # key: (label, function, estimated GPU seconds); run in this order (most wanted first)
    "step0-padded": ("step-0 ratio, padded", lambda c: row_step0(c, False), 25),
    "train-padded-cached": ("train padded, cached ref", lambda c: row_train(c, False, False, False), 20),
    "train-packed-cached": ("train packed, cached ref", lambda c: row_train(c, True, False, False), 20),
    "train-packed-cached-ckpt": ("train packed, cached, grad ckpt (lean)",
                                 lambda c: row_train(c, True, False, True), 20),
    "train-padded-online": ("train padded, online ref", lambda c: row_train(c, False, True, False), 25),
    "step0-packed": ("step-0 ratio, packed", lambda c: row_step0(c, True), 15),
    "score-bf16": ("score ref_logp, bf16 weights", lambda c: row_score(c, None), 15),
    "generate-transformers": ("generate, transformers", row_generate_transformers, 45),
    "train-packed-online": ("train packed, online ref", lambda c: row_train(c, True, True, False), 25),
    "train-padded-cached-ckpt": ("train padded, cached, grad ckpt", lambda c: row_train(c, False, False, True), 20),
    "train-padded-online-ckpt": ("train padded, online, grad ckpt", lambda c: row_train(c, False, True, True), 25),
    "train-packed-online-ckpt": ("train packed, online, grad ckpt", lambda c: row_train(c, True, True, True), 25),
    "score-fp32-autocast": ("score ref_logp, fp32 + autocast bf16", lambda c: row_score(c, "bfloat16"), 15),
    "generate-vllm": ("generate, vLLM", row_generate_vllm, 150),
}


def run_rows(ctx:Ctx, keys:list[str], budget_s:float, t0:float, save) -> list[dict]:
    "Each row in its own try (an error, OOM or missing kernel, is recorded; the next row runs); skip past the budget."
    results = []
    for key in keys:
        label, fn, est = ROWS[key]
        r = {"row": key, "label": label, "attn": ctx.attn}
        used = time.time() - t0
        if used + (0 if ctx.dry else est) > budget_s:
            r["skipped"] = f"budget: {used:.0f}s used of --budget-s {budget_s:.0f} (row needs ~{est}s)"
        else:
            t = time.time()
            r["allocated_at_start_gib"] = ctx.allocated_gib()   # what earlier rows left behind (should be ~0)
            try:
                r.update(fn(ctx))
            except Exception as e:
                traceback.print_exc()
                r["error"] = f"{type(e).__name__}: {str(e).strip()[:300]}"
            r["wall_s"] = time.time() - t
            ctx.free()
        results.append(r)
        print(f"  {key}: {r.get('error') or r.get('skipped') or 'done'} ({time.time() - t0:.0f}s)", flush=True)
        save(results)
    return results


def fmt(v, spec:str) -> str:
    return format(v, spec) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else "-"


def footer(ctx:Ctx, results:list[dict]) -> list[str]:
    "Targets (issue 12) against this run's rows, the PERFORMANCE.md anchors, and ratios measured in this run."
    by = {r["row"]: r for r in results if "step_s" in r}
    lines = []
    packed = by.get("train-packed-cached", {}).get("mfu")
    lean = by.get("train-packed-cached-ckpt", {}).get("peak_gib")
    verdict = lambda ok: "-" if ok is None else ("met" if ok else "NOT met")
    lines.append(f"target: >= {TARGET_MFU:.0%} MFU on real tokens, packed (train packed, cached ref): "
                 f"{fmt(packed, '.1%')} -> {verdict(None if packed is None or ctx.dry else packed >= TARGET_MFU)}")
    lines.append(f"target: <= {TARGET_LEAN_GIB:.0f} GiB lean (packed, grad ckpt; log-probs chunked in every row): "
                 f"{fmt(lean, '.1f')} GiB -> {verdict(None if lean is None else lean <= TARGET_LEAN_GIB)}")
    lines.append("anchors (PERFORMANCE.md, plain PyTorch, H200): 28% MFU padded, 41.6% unpadded; 51-64 GiB; "
                 "generate b64 1,020 tok/s")
    pair = lambda a, b: by[a]["step_s"] / by[b]["step_s"] if a in by and b in by else None
    for a, b, what in (("train-padded-online", "train-padded-cached", "online / cached step time (padded)"),
                       ("train-padded-cached", "train-packed-cached", "padded / packed step time (cached)"),
                       ("train-packed-cached-ckpt", "train-packed-cached", "grad ckpt / none step time (packed)")):
        if pair(a, b): lines.append(f"{what}: {pair(a, b):.2f}x")
    return lines


def table(ctx:Ctx, results:list[dict], header:str) -> str:
    "The one table: row, step time, real tokens/s, peak GiB, MFU, and a note (ratio, padding, error or skip)."
    from o1_pruner.train import O1PrunerConfig
    s, chunk = ctx.shape, O1PrunerConfig.logprob_chunk_size
    w = max(len(r["label"]) for r in results) if results else 10
    out = [header, f"| {'row':<{w}} | {'step s':>7} | {'real tok/s':>10} | {'peak GiB':>8} | {'MFU':>6} | note",
           f"|{'-' * (w + 2)}|{'-' * 9}|{'-' * 12}|{'-' * 10}|{'-' * 8}|------"]
    for r in results:
        note = r.get("error") or r.get("skipped") or r.get("note", "")
        out.append(f"| {r['label']:<{w}} | {fmt(r.get('step_s'), '.3f'):>7} | "
                   f"{fmt(r.get('tokens_per_s'), ',.0f'):>10} | {fmt(r.get('peak_gib'), '.1f'):>8} | "
                   f"{fmt(r.get('mfu'), '.1%'):>6} | {note}")
    out += [f"train: {s['n_seq']} sequences, prompt {s['prompt']}, total lengths {s['min_len']}-{s['max_len']} "
            f"(padded to {s['max_len']} when padded), bf16 autocast + float32 weights, "
            f"{'AdamW' if ctx.dry else 'fused AdamW'}, log-probs in checkpointed chunks of {chunk} positions (the "
            f"library's default); median of {s['steps']} steps after {s['warmup']} warm-up; attention {ctx.attn}",
            f"MFU = 6 (train) or 2 (score, generate) x {fmt(ctx.n_params, ',')} params x real tokens / time / "
            f"{ctx.peak_note}"]
    return "\n".join(out + footer(ctx, results))


def environment(ctx:Ctx) -> dict:
    import importlib.metadata as md
    import torch
    env = {"device": ctx.name, "machine": ctx.machine, "dry_run": ctx.dry, "attn": ctx.attn, "torch": torch.__version__,
           "cuda": torch.version.cuda, "peak_flops": ctx.peak, "peak_note": ctx.peak_note, "shape": ctx.shape}
    for p in ("transformers", "accelerate", "datasets", "flash-attn", "vllm", "o1-pruner"):
        try: env[p] = md.version(p)
        except md.PackageNotFoundError: env[p] = None
    return env


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dry-run", action="store_true", help="every row at tiny size on the CPU")
    p.add_argument("--budget-s", type=float, default=420, help="skip the remaining rows once this much time is used")
    p.add_argument("--only", default="", help=f"comma list of rows to run (default all): {','.join(ROWS)}")
    p.add_argument("--attn", default="auto", help="auto (flash_attention_2 if importable, else sdpa) | sdpa | eager")
    p.add_argument("--peak-tflops", type=float, default=None, help="peak bf16 TFLOP/s for MFU (default by GPU name)")
    p.add_argument("--out", default=None, help="JSON file (default bench/results/gpu_check_<machine>.json)")
    a = p.parse_args(argv)
    keys = [k for k in a.only.split(",") if k] or list(ROWS)
    bad = [k for k in keys if k not in ROWS]
    if bad: p.error(f"unknown rows {bad}; rows: {','.join(ROWS)}")
    t0 = time.time()
    import torch
    if a.dry_run: torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    elif not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU is visible to torch; run with --dry-run to check the script on the CPU")
        return 2
    ctx = Ctx(a)
    print(f"gpu_check: {ctx.name}; torch {torch.__version__}; attention {ctx.attn}; budget {a.budget_s:.0f}s",
          flush=True)
    default = Path(tempfile.gettempdir()) if ctx.dry else REPO / "bench" / "results"   # dry-run numbers: not results
    outs = [Path(a.out) if a.out else default / f"gpu_check_{ctx.machine}.json"]
    if os.environ.get("OUT"): outs.append(Path(os.environ["OUT"]) / f"gpu_check_{ctx.machine}.json")
    env = environment(ctx)

    def save(results, complete=False):
        doc = json.dumps({"environment": env, "complete": complete, "elapsed_s": time.time() - t0, "rows": results},
                         indent=1, default=str)
        for o in outs:
            o.parent.mkdir(parents=True, exist_ok=True); o.write_text(doc)

    results = run_rows(ctx, keys, a.budget_s, t0, save)
    env["n_params"] = ctx.n_params
    save(results, complete=True)
    print("\n" + table(ctx, results, f"O1-Pruner GPU check: {ctx.name}, {time.time() - t0:.0f}s") + "\n")
    print("rows written to " + ", ".join(map(str, outs)))
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
