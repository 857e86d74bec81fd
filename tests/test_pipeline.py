"""Pipeline recipes: one name configures all five stages (the stage notebooks' configuration cell)."""
import json

import pytest
import yaml

from o1_pruner.config import ConfigError, _fields, list_recipes, load_recipe
from o1_pruner.pipeline import STAGES, Pipeline, list_pipelines, load_pipeline


def _stage_types(stage):
    from o1_pruner.analysis import AnalyzeConfig
    from o1_pruner.evaluate import EvalConfig
    from o1_pruner.reward import BuildDatasetConfig, RewardConfig
    from o1_pruner.sampling import SampleConfig
    from o1_pruner.models import ModelArguments
    from o1_pruner.train import DataArguments, O1PrunerConfig
    return {"sample": [SampleConfig], "analyze": [AnalyzeConfig], "build-dataset": [RewardConfig, BuildDatasetConfig],
            "train": [ModelArguments, DataArguments, O1PrunerConfig], "evaluate": [EvalConfig]}[stage]


def test_shipped_pipelines():
    assert {"toy", "marco-o1", "qwq-32b", "r1-distill-1.5b", "qwen3-8b"} <= set(list_pipelines())


@pytest.mark.parametrize("name", ["toy", "marco-o1", "qwq-32b", "r1-distill-1.5b", "qwen3-8b"])
def test_every_stage_config_is_valid(name, tmp_path):
    p = Pipeline(name, root=tmp_path / name)
    for stage in STAGES:
        cfg = p.config(stage)
        unknown = set(cfg) - _fields(_stage_types(stage))
        assert not unknown, f"{name}/{stage}: options no stage dataclass knows: {unknown}"
    assert p.config("train")["dataset_dir"] == p.config("build-dataset")["output_dir"]
    assert p.config("analyze")["store"] == p.config("sample")["output_dir"] == p.config("build-dataset")["store"]
    assert p.config("evaluate")["models"][0] == f"base={p.model}"
    if name != "toy":
        assert p.config("sample")["model"] == p.config("train")["model_name_or_path"] == load_pipeline(name)["model"]
        assert p.config("sample")["max_tokens"] >= 4096 and p.config("evaluate")["max_tokens"] == 8192
        # evaluation samples with the sampling prompt; O1-Pruner and the family's baselines train on one prompt
        assert p.config("sample").get("system") == p.config("evaluate").get("system")
        family = load_pipeline(name)["stages"]["train"]["recipe"].rsplit("-train", 1)[0].replace("-lora", "")
        for base in list_recipes(family):
            if base.endswith(("-dpo", "-sft-shortest")):
                assert load_recipe(base)["system"] == p.config("build-dataset")["system"] == "marco", base
        # build-dataset scores with the numerics the train recipe computes with (step-0 ratio 1)
        train = p.config("train")
        ds, bf16, build = train.get("deepspeed"), train.get("bf16"), p.config("build-dataset")
        assert build["dtype"] == ("bfloat16" if ds and bf16 else "float32")
        assert build["autocast"] == ("bfloat16" if bf16 and not ds else "none")


def test_small_overrides_shrink_the_toy():
    full, small = load_pipeline("toy"), load_pipeline("toy", small=True)
    assert small["problems"]["n_train"] < full["problems"]["n_train"]
    assert small["stages"]["train"]["max_steps"] < full["stages"]["train"]["max_steps"]
    assert small["stages"]["train"]["learning_rate"] == full["stages"]["train"]["learning_rate"]  # merged, not replaced


def test_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        Pipeline("no-such-pipeline")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"model": "m", "stages": {"sampel": {}}}))
    with pytest.raises(ConfigError, match="unknown stage"):
        Pipeline(bad)
    with pytest.raises(ValueError, match="unknown stage"):
        Pipeline("toy", root=tmp_path / "t").stage("fine-tune")
    p = Pipeline("marco-o1", root=tmp_path / "marco")
    with pytest.raises(FileNotFoundError, match="05_presampling"):
        p.stage("train")  # a GPU pipeline never starts earlier stages on its own


@pytest.mark.slow
def test_toy_pipeline_end_to_end(tmp_path, capsys):
    p = Pipeline("toy", root=tmp_path / "run", small=True)
    out = p.stage("evaluate")  # runs sample, build-dataset and train first
    printed = capsys.readouterr().out
    assert "o1-pruner sample --recipe" in printed and "o1-pruner train --recipe" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["metrics"]) == {"base", "o1-pruner"}
    n_test = load_pipeline("toy", small=True)["problems"]["n_test"]
    assert sum(1 for _ in (tmp_path / "run" / "data" / "test.jsonl").open()) == n_test
    saved = yaml.safe_load((tmp_path / "run" / "configs" / "train.yaml").read_text())
    assert saved["max_steps"] == 4 and saved["clamp_negative_advantages"] is True
    assert json.loads((p.path("train") / "o1_pruner_train.json").read_text())["global_step"] == 4
    # the analysis stage reads the same store; done stages are skipped, a changed configuration reruns
    assert (p.stage("analyze") / "summary.json").exists()
    capsys.readouterr()
    p.stage("train")
    assert "done already" in capsys.readouterr().out
    p.spec["stages"]["train"]["max_steps"] = 2
    assert not p.done("train")
    p.stage("train")
    assert "--resume_from_checkpoint false" in capsys.readouterr().out   # the old run's checkpoints are not resumed
    assert json.loads((p.path("train") / "o1_pruner_train.json").read_text())["global_step"] == 2
    assert p.done("train")
