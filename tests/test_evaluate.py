"""Tests of stage 5, evaluation: AES, avg@k statistics, reports from stores, end-to-end runs on a tiny model."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from o1_pruner import evaluate as ev
from o1_pruner.store import SampleStore, load_samples
from o1_pruner.testing import demo_samples, write_store


# --- AES: the paper's cells -------------------------------------------------------------------------------------

def test_aes_marco_o1_pruner_math():
    assert round(ev.aes(73.8, 1156, 77.5, 657), 2) == 0.58
    assert round(ev.aes(73.8, 1156, 77.5, 657, "table"), 2) == 0.58


def test_aes_marco_dpo_math_two_variants():
    assert round(ev.aes(73.8, 1156, 71.8, 761, "table"), 2) == 0.42
    assert round(ev.aes(73.8, 1156, 71.8, 761, "written"), 3) == 0.206
    assert round(ev.aes(73.8, 1156, 71.8, 761), 3) == 0.206  # "written" is the default


def test_aes_fractions_equal_percent_and_validation():
    assert ev.aes(0.738, 1156, 0.718, 761, "table") == pytest.approx(ev.aes(73.8, 1156, 71.8, 761, "table"))
    with pytest.raises(ValueError, match="different scales"):
        ev.aes(73.8, 1156, 0.775, 657)
    assert ev.aes(0.9, 100, 0.5, 100, scale="percent") < 0  # explicit scale allows small percentages
    for bad in [dict(base_acc=0), dict(base_tokens=0), dict(acc=-1), dict(tokens=-5), dict(acc=float("nan"))]:
        args = dict(base_acc=73.8, base_tokens=1156, acc=70.0, tokens=700) | bad
        with pytest.raises(ValueError):
            ev.aes(**args)
    with pytest.raises(ValueError, match="variant"):
        ev.aes(73.8, 1156, 70, 700, "paper")


def test_average_aes_is_mean_of_per_dataset_values():
    base = [(73.8, 1156), (89.2, 530), (57.1, 1112)]
    o1 = [(77.5, 657), (91.4, 343), (61.6, 664)]
    dpo = [(71.8, 761), (88.6, 410), (56.6, 780)]
    metrics = {"base": {}, "o1": {}, "dpo": {}}
    for i, ds in enumerate(["MATH", "GSM8K", "GaoKao"]):
        for name, rows in (("base", base), ("o1", o1), ("dpo", dpo)):
            metrics[name][ds] = dict(accuracy=rows[i][0], mean_tokens=float(rows[i][1]), n_problems=10)
    cmp_ = ev.compare(metrics, "base")
    assert [round(cmp_["o1"][d]["aes_table"], 2) for d in ("MATH", "GSM8K", "GaoKao")] == [0.58, 0.43, 0.64]
    assert round(cmp_["o1"]["average"]["aes_table"], 2) == 0.55
    assert round(cmp_["dpo"]["average"]["aes_table"], 2) == 0.33  # AES of the averages would be 0.35
    assert cmp_["base"]["average"]["aes_written"] == 0


# --- stores and avg@k -------------------------------------------------------------------------------------------

def _rec(pid, s, correct, tokens=100, finish="stop", problem="What is 1+1?"):
    return dict(problem_id=pid, sample_idx=s, problem=problem, gold="2", prompt="p", completion="c",
                num_tokens=tokens, thinking_tokens=None, finish_reason=finish, extracted="2" if correct else "3",
                correct=correct, grade_reason="")


def test_avg_at_k_on_hand_made_store(tmp_path):
    # 4 problems x 3 samples; run accuracies 50%, 25%, 50%
    table = {"a": [1, 1, 1], "b": [1, 0, 0], "c": [0, 0, 1], "d": [0, 0, 0]}
    recs = [_rec(p, s, bool(c), tokens=10 * (s + 1), finish="length" if p == "d" else "stop")
            for p, cs in table.items() for s, c in enumerate(cs)]
    store = write_store(tmp_path / "store", recs[:6], shard=0, num_shards=2)
    write_store(store, recs[6:] + [_rec("a", 0, False, tokens=99)], shard=1, num_shards=2)  # a duplicate: the first counts
    with pytest.warns(UserWarning, match="1 duplicate"):
        df = load_samples(store)
    assert len(df) == 12
    m = ev.store_metrics(df, dict(wall_time_s=2.0, generated_tokens=240))
    assert m["accuracy"] == pytest.approx(100 * 5 / 12)
    assert m["acc_runs"] == [50.0, 25.0, 50.0]
    sd = np.std([50, 25, 50], ddof=1)
    assert m["acc_std"] == pytest.approx(sd)
    assert m["acc_se"] == pytest.approx(sd / math.sqrt(3))
    per_problem = np.array([100, 100 / 3, 100 / 3, 0])
    assert m["acc_se_problems"] == pytest.approx(per_problem.std(ddof=1) / 2)
    assert m["n_problems"] == 4 and m["n_runs"] == 3
    assert m["mean_tokens"] == pytest.approx(20.0) and m["median_tokens"] == 20.0
    assert m["truncation_rate"] == pytest.approx(0.25)
    assert m["tokens_per_s"] == pytest.approx(120.0)


def test_stores_are_read_by_the_one_rule(tmp_path):
    store = write_store(tmp_path / "s", [_rec("a", 0, True)])
    with open(SampleStore(store).shard_files()[0], "a") as f:
        f.write(json.dumps({"problem_id": "b"}) + "\n{not json\n" + '{"problem_id": "b", "sam')   # 2 corrupt, 1 torn
    with pytest.warns(UserWarning, match=r"1 torn last line.*2 corrupt line\(s\) \(first at .*samples-000-of-001.jsonl:2\)"):
        assert len(SampleStore(store).records()) == 1
    with pytest.warns(UserWarning, match="1 torn last line"):
        assert len(load_samples(store)) == 1


# --- reports from hand-made stores -------------------------------------------------------------------------------

def _make_run(run_dir, protocol="greedy"):
    # base: 4/5 correct at 100 tokens on dsA, 2/4 at 300 on dsB; pruned: 4/5 at 50 tokens, 3/4 at 150 (one truncated)
    spec = {
        ("base", "dsA"): [(True, 100)] * 4 + [(False, 100)],
        ("pruned", "dsA"): [(True, 50)] * 4 + [(False, 50)],
        ("base", "dsB"): [(True, 300), (True, 300), (False, 300), (False, 300)],
        ("pruned", "dsB"): [(True, 150), (True, 150), (True, 150), (False, 150)],
    }
    for (m, d), rows in spec.items():
        recs = [_rec(f"{d}-{i}", 0, c, t, "length" if (m, d, i) == ("pruned", "dsB", 3) else "stop", problem="x" * (10 + i))
                for i, (c, t) in enumerate(rows)]
        write_store(run_dir / "stores" / m / d / protocol, recs, dict(model=m))
    return spec


def test_report_from_hand_made_stores(tmp_path):
    run = tmp_path / "run"
    _make_run(run)
    res = ev.report_from_stores(run, base="base", aes_variant="table")
    for f in ["report.md", "metrics.json", "table.md", "table.csv", "details.csv",
              "plots/acc_vs_tokens.png", "plots/reduction_by_difficulty.png", "plots/token_distribution.png"]:
        assert (run / f).is_file() and (run / f).stat().st_size > 0, f
    met = json.loads((run / "metrics.json").read_text())
    assert met["base"] == "base" and met["protocol"] == "greedy" and met["datasets"] == ["dsA", "dsB"]
    pa, pb = met["metrics"]["pruned"]["dsA"], met["metrics"]["pruned"]["dsB"]
    assert pa["accuracy"] == pytest.approx(80.0) and pa["mean_tokens"] == 50 and pa["median_tokens"] == 50
    assert pa["token_reduction"] == pytest.approx(0.5) and pb["truncation_rate"] == pytest.approx(0.25)
    assert pa["aes_written"] == pytest.approx(0.5) and pa["aes_table"] == pytest.approx(0.5)
    assert pb["aes_written"] == pytest.approx(0.5 + 3 * 0.5)
    assert pa["n_problems"] == 5 and pa["wall_time_s"] is None
    avg = met["metrics"]["pruned"]["average"]
    assert avg["accuracy"] == pytest.approx((80 + 75) / 2)
    assert avg["aes_table"] == pytest.approx((0.5 + 2.0) / 2)
    assert avg["token_reduction"] == pytest.approx(0.5)
    assert avg["aes"] == avg["aes_table"]  # the chosen variant
    assert met["metrics"]["base"]["dsA"]["aes_written"] == 0
    table = (run / "table.md").read_text()
    assert "| pruned | 80.0 / 50 / 0.50 | 75.0 / 150 / 2.00 | 77.5 / 100 / 1.25 |" in table
    assert table.splitlines()[2].startswith("| base | 80.0 / 100 / 0.00")
    rows = list(csv.DictReader((run / "table.csv").open()))
    assert rows[1]["model"] == "pruned" and float(rows[1]["dsB_tokens"]) == 150 and float(rows[1]["average_aes"]) == 1.25
    report = (run / "report.md").read_text()
    assert "![" in report and "plots/acc_vs_tokens.png" in report and "--report_only" in report
    assert table.strip() in report


def test_report_keeps_only_problems_shared_by_all_models(tmp_path):
    run = tmp_path / "run"
    _make_run(run)
    write_store(run / "stores" / "base" / "dsA" / "greedy", [_rec("extra", 0, True, 1000)])
    res = ev.report_from_stores(run, base="base", plots=False)
    assert res["metrics"]["base"]["dsA"]["n_problems"] == 5
    assert res["metrics"]["base"]["dsA"]["mean_tokens"] == 100
    assert any("different problems" in n for n in res["notes"])


def test_report_errors(tmp_path):
    run = tmp_path / "run"
    _make_run(run)
    with pytest.raises(ValueError, match="base 'nope'"):
        ev.report_from_stores(run, base="nope", plots=False)
    _make_run(run, protocol="t0.6-p1-n4")
    with pytest.raises(ValueError, match="protocols"):
        ev.report_from_stores(run, plots=False)
    assert ev.report_from_stores(run, protocol="greedy", plots=False)["protocol"] == "greedy"
    with pytest.raises(FileNotFoundError, match="stores/"):
        ev.report_from_stores(tmp_path / "empty", plots=False)


def test_other_finish_reasons_are_read_counted_and_noted(tmp_path):
    """A store with vLLM's "abort" or a null finish reason is scored, not refused; the report counts them."""
    run = tmp_path / "run"
    _make_run(run)
    shard = SampleStore(run / "stores" / "pruned" / "dsA" / "greedy").shard_files()[0]
    recs = [json.loads(line) for line in shard.read_text().splitlines()]
    recs[1]["finish_reason"], recs[2]["finish_reason"] = "abort", None
    shard.write_text("".join(json.dumps(r) + "\n" for r in recs))
    df = load_samples(shard.parent)
    assert df["finish_reason"].eq("abort").sum() == 1 and df["finish_reason"].isna().sum() == 1
    m = ev.store_metrics(df)
    assert m["unfinished_rate"] == pytest.approx(2 / 5) and m["truncation_rate"] == 0 and m["accuracy"] == 80
    res = ev.report_from_stores(run, base="base", plots=False)
    assert res["metrics"]["pruned"]["dsA"]["unfinished_rate"] == pytest.approx(0.4)
    assert res["metrics"]["base"]["dsA"]["unfinished_rate"] == 0
    note = "dsA: 2 of pruned's solutions did not finish normally (finish reason None 1, abort 1)"
    assert any(n.startswith(note) for n in res["notes"]) and note in (run / "report.md").read_text()


def test_difficulty_rules():
    df = demo_samples(n_problems=9, k=2)
    d, rule = ev.add_difficulty(df, "base", "length")
    assert rule == "length" and set(d["difficulty"]) == {"short", "medium", "long"}
    d, rule = ev.add_difficulty(df.assign(level="Level 3"), "base")
    assert rule == "level"
    d, rule = ev.add_difficulty(df, "base")
    assert rule == "base_acc" and d["difficulty"].str.startswith("base").all()
    red = ev.reduction_by_difficulty(d, "base")
    assert set(red["model"]) == {"pruned"} and (red["token_reduction"] > 0).all()


# --- specs, config, CLI --------------------------------------------------------------------------------------------

def test_parse_specs_and_config_validation():
    assert ev.parse_specs(["base=a/b", "c=d"]) == {"base": "a/b", "c": "d"}
    with pytest.raises(ValueError, match="twice"):
        ev.parse_specs(["a=x", "a=y"])
    with pytest.raises(ValueError, match="identical"):
        ev.EvalConfig(models=["a=b"], n=3, temperature=0)
    with pytest.raises(ValueError, match="aes_variant"):
        ev.EvalConfig(aes_variant="paper")
    assert ev.protocol_name(1, 0) == "greedy" and ev.protocol_name(8, 0.6, 0.95) == "t0.6-p0.95-n8"


def test_cli_report_only(tmp_path, capsys):
    run = tmp_path / "run"
    _make_run(run)
    assert ev.evaluate_cli(["--report_only", "--output_dir", str(run), "--aes_variant", "table"]) == 0
    assert "| pruned | 80.0 / 50 / 0.50" in capsys.readouterr().out
    assert ev.evaluate_cli(["--output_dir", str(run)]) == 2  # no models


# --- end to end on a tiny random model ---------------------------------------------------------------------------

def test_evaluate_tiny_model_end_to_end_and_resume(tmp_path, tiny_model_dir, monkeypatch):
    pytest.importorskip("o1_pruner.sampling", reason="generation needs stage 1 (o1_pruner.sampling)")
    run = tmp_path / "run"
    cfg = ev.EvalConfig(models=[f"base={tiny_model_dir}", f"same={tiny_model_dir}"], datasets=["gsm8k-test"],
                        limit=3, max_tokens=16, batch_size=3, output_dir=str(run))
    res = ev.evaluate(config=cfg)
    for m in ("base", "same"):
        store = run / "stores" / m / "gsm8k-test" / "greedy"
        df = load_samples(store)
        assert len(df) == 3 and set(df.sample_idx) == {0}
        assert (df.num_tokens <= 16).all() and df.finish_reason.isin(["stop", "length"]).all()
        assert (store / "store.json").is_file()
        t = json.loads((store.parent / "greedy.timing.json").read_text())
        assert t["generated_tokens"] == int(df.num_tokens.sum()) and t["wall_time_s"] > 0
    met = res["metrics"]
    # same weights, greedy: identical outputs, so AES 0 and equal tokens
    assert met["same"]["gsm8k-test"]["mean_tokens"] == met["base"]["gsm8k-test"]["mean_tokens"]
    assert met["base"]["gsm8k-test"]["n_problems"] == 3
    if met["base"]["gsm8k-test"]["accuracy"] == 0:  # random weights: AES is undefined and the report says why
        assert met["same"]["gsm8k-test"]["aes_written"] is None and any("AES is n/a" in x for x in res["notes"])
    assert (run / "report.md").is_file() and (run / "metrics.json").is_file()
    report = (run / "report.md").read_text()
    assert "o1-pruner evaluate --models" in report and "--limit 3" in report

    # resume: nothing new is generated when everything is done
    def boom(*a, **k):
        raise AssertionError("generation should have been skipped")
    import o1_pruner.sampling as sampling
    monkeypatch.setattr(sampling, "backend_for", boom)
    monkeypatch.setattr(sampling, "sample", boom)
    ev.evaluate(config=cfg)
    # a larger limit generates only the missing problems
    monkeypatch.undo()
    ev.evaluate(config=ev.EvalConfig(**{**cfg.__dict__, "limit": 4, "models": [f"base={tiny_model_dir}"]}))
    df = load_samples(run / "stores" / "base" / "gsm8k-test" / "greedy")
    assert len(df) == 4
    # changed generation settings in the same store are refused
    with pytest.raises(ValueError, match="different configuration"):
        ev.evaluate(config=ev.EvalConfig(**{**cfg.__dict__, "max_tokens": 8}))


def test_evaluate_lora_adapter_is_merged(tmp_path, tiny_model_dir):
    pytest.importorskip("o1_pruner.sampling", reason="generation needs stage 1 (o1_pruner.sampling)")
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    assert ev.is_lora_adapter(adapter) and not ev.is_lora_adapter(tiny_model_dir)
    run = tmp_path / "run"
    res = ev.evaluate([f"base={tiny_model_dir}", f"lora={adapter}"], ["gsm8k-test"], limit=2, max_tokens=8,
                      output_dir=str(run))
    assert (run / "merged" / "lora" / "config.json").is_file()
    # a fresh LoRA adapter (B = 0) is the identity: the same greedy tokens as the base
    assert res["metrics"]["lora"]["gsm8k-test"]["mean_tokens"] == res["metrics"]["base"]["gsm8k-test"]["mean_tokens"]
    again = ev.evaluate([f"base={tiny_model_dir}", f"lora={adapter}"], ["gsm8k-test"], limit=2, max_tokens=8,
                        output_dir=str(run))  # complete: nothing generated; the store's model is the merged folder
    for k in ("accuracy", "mean_tokens", "n_samples", "wall_time_s"):
        assert again["metrics"]["lora"]["gsm8k-test"][k] == res["metrics"]["lora"]["gsm8k-test"][k], k


# --- one process per model -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def other_model_dir(tmp_path_factory, char_tokenizer):
    """A second tiny model (other random weights), so that two models give different outputs."""
    from conftest import make_tiny_model
    path = tmp_path_factory.mktemp("tiny-model-other")
    make_tiny_model(char_tokenizer, seed=1).save_pretrained(path)
    char_tokenizer.save_pretrained(path)
    return path


def _report_without_times(run):
    """report.md with the run folder, the process option and the wall-time / tok/s cells taken out."""
    out = []
    for line in (run / "report.md").read_text().replace(str(run), "RUN").splitlines():
        line = line.replace(" --process_per_model True", "").replace(" --process_per_model False", "")
        if line.startswith("| ") and line.count("|") == 13: line = "|".join(line.split("|")[:-3])
        out.append(line)
    return out


def _metrics_without_times(run):
    met = json.loads((run / "metrics.json").read_text())
    for per in met["metrics"].values():
        for m in per.values():
            m.pop("wall_time_s"); m.pop("tokens_per_s", None)
    return met


def test_each_model_generates_in_its_own_process(tmp_path, tiny_model_dir, other_model_dir, monkeypatch):
    """process_per_model: the same stores, timing files and report as in one process; the parent never loads a model."""
    import os
    models = [f"base={tiny_model_dir}", f"other={other_model_dir}"]
    kw = dict(datasets=["gsm8k-test"], limit=3, max_tokens=12, batch_size=3)
    ev.evaluate(models, output_dir=str(tmp_path / "in"), process_per_model=False, **kw)
    import o1_pruner.sampling as sampling

    def boom(*a, **k):
        raise AssertionError("the parent process built a model")
    monkeypatch.setattr(sampling, "backend_for", boom)  # a spawned child imports its own, unpatched module
    ev.evaluate(models, output_dir=str(tmp_path / "proc"), process_per_model=True, **kw)
    ins, procs = tmp_path / "in", tmp_path / "proc"
    assert (procs / "table.md").read_text() == (ins / "table.md").read_text()
    assert _metrics_without_times(procs) == _metrics_without_times(ins)
    assert _report_without_times(procs) == _report_without_times(ins)
    pids = []
    for m in ("base", "other"):
        a = load_samples(ins / "stores" / m / "gsm8k-test" / "greedy")
        b = load_samples(procs / "stores" / m / "gsm8k-test" / "greedy")
        assert a["completion"].tolist() == b["completion"].tolist() and len(b) == 3
        t_in = json.loads((ins / "stores" / m / "gsm8k-test" / "greedy.timing.json").read_text())
        t_proc = json.loads((procs / "stores" / m / "gsm8k-test" / "greedy.timing.json").read_text())
        assert t_in["pid"] == os.getpid() and t_proc["pid"] != os.getpid()
        assert t_proc["generated_tokens"] == t_in["generated_tokens"] and t_proc["sessions"] == t_in["sessions"] == 1
        pids.append(t_proc["pid"])
    assert pids[0] != pids[1]  # one process per model
    ev.evaluate(models, output_dir=str(procs), process_per_model=True, **kw)  # complete: no process is started
    assert json.loads((procs / "stores" / "base" / "gsm8k-test" / "greedy.timing.json").read_text())["sessions"] == 1


def test_a_failing_model_process_is_a_clear_error(tmp_path, tiny_model_dir):
    """An error in a model's process comes back as ModelProcessError with the child's traceback; a crash too."""
    import os
    import shutil
    bad = tmp_path / "bad"
    shutil.copytree(tiny_model_dir, bad)
    (bad / "config.json").write_text(json.dumps({"model_type": "no-such-architecture"}))
    run = tmp_path / "run"
    with pytest.raises(ev.ModelProcessError, match=r"model 'bad' failed in its own process: \w+") as e:
        ev.evaluate([f"bad={bad}"], ["gsm8k-test"], limit=1, max_tokens=4, output_dir=str(run), process_per_model=True)
    assert "Traceback" in e.value.child_traceback and "generate_model_stores" in e.value.child_traceback
    assert "no-such-architecture" in str(e.value)
    with pytest.raises(ev.ModelProcessError, match="ended before it finished"):
        ev.run_in_process(os._exit, 3, what="a process that exits")


def test_cli_prints_a_model_process_error(monkeypatch, capsys):
    def fail(config):
        raise ev.ModelProcessError("model 'x' failed in its own process: OSError: no weights", "Traceback (child)\n")
    monkeypatch.setattr(ev, "evaluate", fail)
    assert ev.evaluate_cli(["--models", "x=m"]) == 1
    err = capsys.readouterr().err
    assert err == "Traceback (child)\no1-pruner evaluate: model 'x' failed in its own process: OSError: no weights\n"


def test_model_processes_by_default_on_gpus_only():
    assert ev.use_model_processes(ev.EvalConfig(backend="vllm"))
    assert ev.use_model_processes(ev.EvalConfig(backend="transformers", device="cuda"))
    assert not ev.use_model_processes(ev.EvalConfig(backend="transformers", device="cpu"))
    assert not ev.use_model_processes(ev.EvalConfig(backend="vllm", process_per_model=False))
    assert ev.use_model_processes(ev.EvalConfig(backend="transformers", device="cpu", process_per_model=True))
