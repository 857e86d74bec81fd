"""The embedded default end to end: `o1-pruner demo --quick true` runs the rounds, the variants and the baselines."""
import json

import pytest
import yaml

from o1_pruner.cli import main
from o1_pruner.config import ConfigError
from o1_pruner.demo import DemoConfig, check_resumable, demo_plan, second_worker, wait_second


@pytest.mark.slow
@pytest.mark.parametrize("workers", [2, 1])
def test_quick_demo_end_to_end(tmp_path, capsys, workers):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "true", "--workers", str(workers), "--output_dir", str(out)]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    labels = {"base", "fast-prompt", "sft-shortest", "dpo", "o1-pruner-faithful", "o1-pruner-recommended-r1",
              "o1-pruner-recommended-r2"}
    assert set(metrics["models"]) == labels and metrics["pruned_model"] == "o1-pruner-recommended-r2"
    for m in metrics["models"].values():
        assert 0 <= m["accuracy %"] <= 100 and m["mean tokens"] > 0
    # round 2 pre-samples from round 1's selected recommended model; the faithful recipe trains once
    r2 = yaml.safe_load((out / "round2" / "configs" / "sample.yaml").read_text())
    assert r2["model"] == str(out / "round1" / "checkpoint-recommended" / "best")
    assert not (out / "round2" / "checkpoint-faithful").exists()
    # selection in round 2 is held to the original reference's validation accuracy
    sel1 = json.loads((out / "round1" / "checkpoint-recommended" / "selection.json").read_text())
    sel2 = json.loads((out / "round2" / "checkpoint-recommended" / "selection.json").read_text())
    assert sel2["baseline_accuracy"] == sel1["history"][0]["accuracy"]
    report = (out / "report.md").read_text()
    for section in ("## What O1-Pruner adds", "**Reading.**", "## Length by difficulty", "Table 1 layout", "Target ("):
        assert section in report
    assert "easy acc %" in report and "within Q4 - Q1" in report
    # one line per stage, then the table and the report's path; Trainer logs and warnings went to the log file
    lines = [line for line in printed.strip().splitlines() if line.strip()]
    assert lines[-1] == f"report: {out / 'report.md'}" and any(line.startswith("| base ") for line in lines[-10:])
    assert not any("'loss'" in line or "Warning" in line for line in printed.splitlines())
    assert "'loss'" in (out / "demo.log").read_text()
    assert sum(line.startswith("round1 · sample:") for line in lines) == 1
    # with 2 workers the baselines and the reference's evaluation ran in the second process
    times = metrics["stage_seconds"]
    assert (out / "second_process.log").exists() == (workers == 2)
    assert ("evaluate · reference" in times) == (workers == 2) and "baseline · dpo" in times
    # a rerun resumes: every stage is done, nothing runs again, no second process starts
    log_size = (out / "demo.log").stat().st_size
    assert main(["demo", "--quick", "true", "--workers", str(workers), "--output_dir", str(out)]) == 0
    rerun = capsys.readouterr().out
    assert "done already" in rerun and "second process (log" not in rerun
    assert (out / "demo.log").stat().st_size == log_size


def test_plan_comes_from_the_recipe_and_flags_are_checked():
    assert demo_plan(DemoConfig(rounds=1, baselines=["none"]))["baselines"] == []
    with pytest.raises(ConfigError, match="unknown variant/baseline"):
        demo_plan(DemoConfig(baselines=["faithful"]))   # an O1-Pruner variant is no baseline
    with pytest.raises(ConfigError, match="has no `demo:` block"):
        demo_plan(DemoConfig(pipeline="marco-o1"))


def test_cli_refuses_bad_flags_with_one_line(tmp_path, capsys):
    assert main(["demo", "--variants", "magic", "--output_dir", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown variant/baseline ['magic']" in err[0]
    assert not (tmp_path / "x").exists()


def test_a_run_folder_keeps_its_settings(tmp_path):
    cfg = DemoConfig(quick=True, output_dir=str(tmp_path))
    check_resumable(cfg, demo_plan(cfg))
    check_resumable(DemoConfig(quick=True, output_dir=str(tmp_path), workers=1, threads=2), demo_plan(cfg))
    other = DemoConfig(quick=True, output_dir=str(tmp_path), seed=1)
    with pytest.raises(ConfigError, match="seed: 0 then, 1 now"):
        check_resumable(other, demo_plan(other))
    check_resumable(DemoConfig(quick=True, output_dir=str(tmp_path), seed=1, overwrite=True), demo_plan(other))
    assert json.loads((tmp_path / "demo.json").read_text())["seed"] == 1


def test_second_process_may_start_worker_processes(tmp_path):
    import _spawn_targets
    out, log = tmp_path / "graded.json", tmp_path / "log.txt"
    with second_worker(log, 1) as ex:
        wait_second(ex.submit(_spawn_targets.grade_many, str(out)), log)
    graded = json.loads(out.read_text())
    assert len(graded) == 300 and all(graded[:-1]) and not graded[-1]
    assert "graded 300" in log.read_text()


def test_second_process_failure_names_its_log(tmp_path):
    import _spawn_targets
    log = tmp_path / "log.txt"
    with second_worker(log, 1) as ex:
        with pytest.raises(RuntimeError, match="second process failed") as e:
            wait_second(ex.submit(_spawn_targets.fail, "the reason"), log)
    assert "ValueError: the reason" in str(e.value) and "about to fail" in str(e.value)
