"""Step 0 is exact through the real path: `o1-pruner build-dataset` scores ref_logp, `o1-pruner train` starts at ratio 1
(within 1e-4) in float32 and bfloat16, with and without DeepSpeed, with a chat template that honours `enable_thinking`
both ways, and with the real SmolLM2 tokenizer. A setting that changes the tokens or the numerics is a clear error."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from o1_pruner.pipeline import Pipeline
from o1_pruner.testing import run_train
from o1_pruner.toy import reference_path

THINK_TEMPLATE = (  # the toy's ChatML template, plus Qwen3's rule: enable_thinking=false closes an empty think block
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}")


def cli(*args, ok=True):
    p = subprocess.run([sys.executable, "-m", "o1_pruner.cli", *map(str, args)], capture_output=True, text=True,
                       timeout=600)
    if ok: assert p.returncode == 0, f"{args[0]} exited {p.returncode}:\n{p.stdout[-2000:]}\n{p.stderr[-4000:]}"
    return p


@pytest.fixture(scope="module")
def think_model(tmp_path_factory):
    "The shipped toy reference with a chat template that honours enable_thinking."
    d = tmp_path_factory.mktemp("think") / "model"
    shutil.copytree(reference_path(), d)
    (d / "chat_template.jinja").write_text(THINK_TEMPLATE)
    return d


@pytest.fixture(scope="module")
def store(tmp_path_factory, think_model):
    "A store written by the real sample stage (the toy pipeline at test size), sampled from `think_model`."
    run = Pipeline("toy", small=True, root=tmp_path_factory.mktemp("toy"))
    return run.stage("sample")


def build(store, out, model, *flags):
    cli("build-dataset", "--store", store, "--output_dir", out, "--reference_model", model, "--cutoff", 256,
        "--batch_size", 16, "--lam", 5, "--samples_per_problem", 0, *flags)
    return out


def train(out, data, model, *flags, nproc=None):
    return run_train(out, ["--recipe", "tiny-cpu-train", "--model_name_or_path", str(model), "--dataset_dir", str(data),
                           "--max_steps", "1", "--per_device_train_batch_size", "8", *flags], nproc=nproc)


CASES = {  # name: (build-dataset flags, train flags, processes)
    "float32": ([], [], None),
    "bf16-autocast": (["--autocast", "bfloat16", "--attn_implementation", "eager"], [], None),
    "bf16-deepspeed-zero2": (["--dtype", "bfloat16", "--attn_implementation", "eager"], ["--deepspeed", "zero2"], 1),
    "bf16-deepspeed-zero3": (["--dtype", "bfloat16", "--attn_implementation", "eager"], ["--deepspeed", "zero3"], 1),
    "thinking-off": (["--enable_thinking", "false"], [], None),
    "thinking-on": (["--enable_thinking", "true"], [], None),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", list(CASES))
def test_step0_ratio_is_one(case, store, think_model, tmp_path):
    bflags, tflags, nproc = CASES[case]
    data = build(store, tmp_path / "data", think_model, *bflags)
    run = train(tmp_path / "out", data, think_model, *tflags, nproc=nproc)
    assert abs(run["ratios"][0] - 1) < 1e-4, run["ratios"]
    manifest = json.loads((data / "manifest.json").read_text())
    assert run["numerics"]["dtype"] == manifest["ref_numerics"]["dtype"]
    assert run["numerics"]["autocast"] == manifest["ref_numerics"]["autocast"]
    assert run["config"]["enable_thinking"] == manifest["tokenization"]["enable_thinking"]


@pytest.mark.slow
def test_other_tokens_or_numerics_are_refused(store, think_model, tmp_path):
    data = build(store, tmp_path / "data", think_model, "--enable_thinking", "false")
    with pytest.raises(RuntimeError, match="enable_thinking: False when scored, True now"):
        train(tmp_path / "t1", data, think_model, "--enable_thinking", "true")
    pure = build(store, tmp_path / "pure", think_model, "--dtype", "bfloat16")
    p = cli("train", "--recipe", "tiny-cpu-train", "--model_name_or_path", think_model, "--dataset_dir", pure,
            "--output_dir", tmp_path / "t2", "--max_steps", 1, ok=False)   # bf16 inherited, but mixed precision
    assert p.returncode == 2 and "dtype: bfloat16 when scored, float32 now" in p.stderr, p.stderr[-2000:]
    assert "--dtype float32 --autocast bfloat16" in p.stderr
