"""The embedded default end to end: `o1-pruner demo --quick` runs all five stages and the baselines on CPU."""
import json

import pytest

from o1_pruner.cli import main
from o1_pruner.demo import DemoConfig, Stages, join_logged, spawn_logged


@pytest.mark.slow
@pytest.mark.parametrize("workers", [2, 1])
def test_quick_demo_end_to_end(tmp_path, capsys, workers):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--workers", str(workers), "--output_dir", str(out)]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    models = metrics["models"]
    # two rounds by default: the faithful recipe once, the recommended variant iterated
    assert {"base", "o1-pruner-faithful", "o1-pruner-recommended-r1", "o1-pruner-recommended-r2", "fast-prompt"} <= set(models)
    assert metrics["pruned_model"] == "o1-pruner-recommended-r2"
    r2 = metrics["rounds"][1]
    assert r2["round"] == 2 and "faithful" not in r2 and "recommended" in r2
    assert metrics["rounds"][1]["policy"] != metrics["rounds"][0]["policy"]  # round 2 samples from round 1's model
    assert not (out / "round2" / "train-faithful").exists()
    for m in models.values():
        assert 0 <= m["accuracy"] <= 100 and m["mean_tokens"] > 0
    assert any("reduction" in k for k in metrics)
    assert len(metrics["reference_quartiles"]["acc_global"]) == 4
    report = (out / "report.md").read_text()
    assert "| model |" in report and "length quartile" in report and "## Rounds" in report
    assert "Target (" in report
    assert (out / "eval" / "report.md").exists()
    # the last printed lines are the comparison table and the report's path
    tail = [l for l in printed.strip().splitlines() if l.strip()][-8:]
    assert tail[-1].startswith("report: ") and any(l.startswith("| base |") for l in tail)
    # a rerun resumes: every stage is already done
    assert main(["demo", "--quick", "--output_dir", str(out)]) == 0
    rerun = capsys.readouterr().out
    assert "[demo] ===" not in rerun and "done already" in rerun
    times = json.loads((out / "metrics.json").read_text())["stage_seconds"]
    assert set(times) >= {"problems", "5 evaluation", "baselines: SFT-shortest and DPO"}
    # with 2 workers the baselines and the reference's evaluation ran in the second process
    assert (out / "second_process.log").exists() == (workers == 2)
    assert ("5 evaluation: reference and baselines" in times) == (workers == 2)


def test_stages_skip_finished_work(tmp_path, capsys):
    st = Stages(tmp_path)
    calls = []
    assert st("a", tmp_path / "a", lambda: calls.append(1) or {"x": 1}) == {"x": 1}
    assert Stages(tmp_path)("a", tmp_path / "a", lambda: calls.append(1) or {"x": 2}) == {"x": 1}
    assert calls == [1] and "done already" in capsys.readouterr().out


def test_config_validation():
    with pytest.raises(ValueError, match="unknown variant"):
        DemoConfig(variants=["nope"])
    with pytest.raises(ValueError, match="n_test must be >= 1"):
        DemoConfig(n_test=0)
    q = DemoConfig(quick=True)
    assert q.n_train <= 24 and q.max_steps <= 4


def test_rounds_need_the_iterated_variant():
    with pytest.raises(ValueError, match="iterate_variant"):
        DemoConfig(rounds=2, variants=["faithful"])
    assert DemoConfig(rounds=1, variants=["faithful"]).variants == ["faithful"]


def test_spawned_process_may_start_worker_processes(tmp_path):
    import _spawn_targets
    out, log = tmp_path / "graded.json", tmp_path / "log.txt"
    join_logged(spawn_logged(_spawn_targets.grade_many, (str(out),), log))
    graded = json.loads(out.read_text())
    assert len(graded) == 300 and all(graded[:-1]) and not graded[-1]
    assert "graded 300" in log.read_text()


def test_spawned_failure_is_reported_with_its_log(tmp_path):
    import _spawn_targets
    log = tmp_path / "log.txt"
    with pytest.raises(RuntimeError, match="exit code 1") as e:
        join_logged(spawn_logged(_spawn_targets.fail, ("the reason",), log), "the helper")
    assert "ValueError: the reason" in str(e.value) and "about to fail" in str(e.value)
