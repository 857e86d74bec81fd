"""Every launch mode of `o1-pruner train`, run as a user types it (CPU, gloo): plain, torchrun 1/2 processes with DDP,
DeepSpeed ZeRO-2/3, LoRA, the online reference, gradient accumulation, packed (padding-free) batches. Each must train, start at ratio 1, and follow
the plain 1-process run on the same global batch. The data: the toy pipeline's samples and `build-dataset` output."""
import json

import pytest

from o1_pruner.pipeline import Pipeline
from o1_pruner.testing import run_train
from o1_pruner.toy import reference_path

STEPS = 3


@pytest.fixture(scope="module")
def rewarded(tmp_path_factory):
    run = Pipeline("toy", small=True, root=tmp_path_factory.mktemp("toy-pipeline"))
    return run.stage("build-dataset")


def _args(rewarded, batch, ga=1, *extra):
    return ["--recipe", "tiny-cpu-train", "--model_name_or_path", str(reference_path()), "--dataset_dir", str(rewarded),
            "--max_steps", str(STEPS), "--learning_rate", "1e-3", "--seed", "0", "--per_device_train_batch_size",
            str(batch), "--gradient_accumulation_steps", str(ga), *extra]


@pytest.fixture(scope="module")
def plain(rewarded, tmp_path_factory):
    return run_train(tmp_path_factory.mktemp("plain"), _args(rewarded, 4))


@pytest.fixture(scope="module")
def plain_lora(rewarded, tmp_path_factory):
    return run_train(tmp_path_factory.mktemp("plain-lora"), _args(rewarded, 4, 1, "--finetuning_type", "lora",
                                                                  "--lora_r", "4", "--learning_rate", "1e-2"))


def _check(run, base, world):
    assert run["world_size"] == world
    assert len(run["losses"]) == STEPS and max(base["losses"]) - min(base["losses"]) > 1e-3, base["losses"]
    assert run["ratios"][0] == pytest.approx(1.0, abs=1e-4)
    assert run["losses"] == pytest.approx(base["losses"], abs=1e-4)
    assert run["ratios"] == pytest.approx(base["ratios"], abs=1e-4)


MODES = {  # name: (processes, per-device batch, grad-accum, extra flags); global batch 4 in each
    "plain-grad-accum-2x2": (None, 2, 2, []),
    "torchrun-1": (1, 4, 1, []),
    "torchrun-2": (2, 2, 1, []),
    "torchrun-2-grad-accum": (2, 1, 2, []),
    "torchrun-2-zero2": (2, 2, 1, ["--deepspeed", "zero2"]),
    "torchrun-2-zero3": (2, 2, 1, ["--deepspeed", "zero3"]),
    "torchrun-2-online-ref": (2, 2, 1, ["--ref_source", "online"]),
    "torchrun-2-zero3-online-ref": (2, 2, 1, ["--deepspeed", "zero3", "--ref_source", "online"]),
    "plain-packed": (None, 4, 1, ["--packing", "true"]),
    "torchrun-2-packed": (2, 2, 1, ["--packing", "true"]),
}


@pytest.mark.slow
@pytest.mark.parametrize("mode", list(MODES))
def test_launch_mode_matches_one_process(mode, rewarded, plain, tmp_path):
    nproc, batch, ga, extra = MODES[mode]
    run = run_train(tmp_path / mode, _args(rewarded, batch, ga, *extra), nproc=nproc)
    _check(run, plain, nproc or 1)
    if "packed" in mode:
        assert all(h["pad_frac"] == 0 for h in run["log_history"] if "pad_frac" in h)
    if "zero" in mode:
        assert (tmp_path / mode / "model.safetensors").exists()   # ZeRO-3 gathers a full model on save


@pytest.mark.slow
@pytest.mark.parametrize("ref_source", ["dataset", "online"])
def test_lora_under_torchrun(ref_source, rewarded, plain_lora, tmp_path):
    run = run_train(tmp_path / "lora", _args(rewarded, 2, 1, "--finetuning_type", "lora", "--lora_r", "4",
                                             "--learning_rate", "1e-2", "--ref_source", ref_source), nproc=2)
    _check(run, plain_lora, 2)
    assert json.loads((tmp_path / "lora" / "adapter_config.json").read_text())["r"] == 4


def test_plain_process_never_uses_data_parallel(tmp_path):
    from o1_pruner.models import TrainingConfig, check_launch
    args = TrainingConfig(output_dir=str(tmp_path), use_cpu=True, report_to=[])
    check_launch(args)
    args._n_gpu = 2   # what the Trainer sees on a machine with 2 GPUs and no torchrun
    with pytest.raises(ValueError, match="torchrun --nproc_per_node 2"):
        check_launch(args)
