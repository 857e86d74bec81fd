"""Tests of stage 5, evaluation: AES, avg@k statistics, reports from stores, end-to-end runs on a tiny model."""
from __future__ import annotations

import csv
import json
import math

import numpy as np
import pandas as pd
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
    from o1_pruner.cli import main
    assert main(["evaluate", "--output_dir", str(run)]) == 2  # no models


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


def test_cli_prints_a_model_process_error(monkeypatch, capsys, tiny_model_dir, tmp_path):
    def fail(config):
        raise ev.ModelProcessError("model 'x' failed in its own process: OSError: no weights", "Traceback (child)\n")
    monkeypatch.setattr(ev, "evaluate", fail)
    assert ev.evaluate_cli(["--models", f"x={tiny_model_dir}", "--output_dir", str(tmp_path / "e")]) == 1
    err = capsys.readouterr().err
    assert err == "Traceback (child)\no1-pruner evaluate: model 'x' failed in its own process: OSError: no weights\n"


def test_model_processes_by_default_on_gpus_only():
    assert ev.use_model_processes(ev.EvalConfig(backend="vllm"))
    assert ev.use_model_processes(ev.EvalConfig(backend="transformers", device="cuda"))
    assert not ev.use_model_processes(ev.EvalConfig(backend="transformers", device="cpu"))
    assert not ev.use_model_processes(ev.EvalConfig(backend="vllm", process_per_model=False))
    assert ev.use_model_processes(ev.EvalConfig(backend="transformers", device="cpu", process_per_model=True))


# --- statistics: intervals, pass@k, maj@k, paired tests ------------------------------------------------------------

def test_pass_at_k_matches_brute_force_enumeration():
    import itertools
    for n in range(1, 8):
        for c in range(n + 1):
            outcomes = [1] * c + [0] * (n - c)
            for k in range(1, n + 1):
                subsets = list(itertools.combinations(range(n), k))
                brute = sum(any(outcomes[i] for i in s) for s in subsets) / len(subsets)
                assert ev.pass_at_k(n, c, k) == pytest.approx(brute, abs=1e-12), (n, c, k)
    with pytest.raises(ValueError, match="1 <= k <= n"):
        ev.pass_at_k(3, 1, 4)
    assert ev.k_grid(1) == [1] and ev.k_grid(4) == [1, 2, 4] and ev.k_grid(12) == [1, 2, 4, 8, 12]


def test_store_metrics_pass_and_maj_on_hand_made_store(tmp_path):
    # a: 1 of 4 correct; b: 4 of 4; c: 0 of 4, three samples agree on the wrong "7"
    rows = {"a": [(True, "2"), (False, "3"), (False, "5"), (False, "6")],
            "b": [(True, "2")] * 4,
            "c": [(False, "7"), (False, "7.0"), (False, "7"), (False, None)]}
    recs = [dict(_rec(p, s, c), extracted=e) for p, rs in rows.items() for s, (c, e) in enumerate(rs)]
    m = ev.store_metrics(load_samples(write_store(tmp_path / "s", recs)))
    assert list(m["pass_at_k"]) == ["1", "2", "4"]
    assert m["pass_at_k"]["1"] == pytest.approx(m["accuracy"])
    assert m["pass_at_k"]["2"] == pytest.approx(100 * (0.5 + 1 + 0) / 3)   # a: 1 - C(3,2)/C(4,2) = 0.5
    assert m["pass_at_k"]["4"] == pytest.approx(100 * 2 / 3)
    # maj@1: first sample; maj@2: a ties 1-1 (0.5); maj@4: a's right answer loses to nothing but ties with 3 wrong ones
    assert m["maj_at_k"] == pytest.approx({"1": 100 * 2 / 3, "2": 100 * 1.5 / 3, "4": 100 * (0.25 + 1) / 3})
    assert m["thinking_tokens"] is None and m["answer_tokens"] is None and m["think_rate"] == 0


def test_thinking_and_answer_tokens_add_up():
    df = demo_samples(n_problems=4, k=2)
    df["thinking_tokens"] = [None if i % 3 == 0 else int(t * 0.8) for i, t in enumerate(df["num_tokens"])]
    sp = ev.thinking_split(df)
    assert sp["thinking_tokens"] + sp["answer_tokens"] == pytest.approx(df["num_tokens"].mean())
    assert sp["think_rate"] == pytest.approx(df["thinking_tokens"].notna().mean())


def test_accuracy_intervals_cover_the_true_value_in_a_seeded_simulation():
    rng = np.random.default_rng(123)
    hits_problems = hits_runs = 0
    for t in range(150):
        p = rng.beta(2, 3, size=80)          # population mean solve rate 0.4
        c = rng.binomial(4, p)
        pp = pd.DataFrame({"n": 4, "c": c, "acc": c / 4})
        ci = ev.accuracy_cis(pp, n_boot=500, seeds=[t])
        hits_problems += ci["accuracy_ci95"][0] <= 40 <= ci["accuracy_ci95"][1]
        hits_runs += ci["accuracy_ci95_runs"][0] <= 100 * p.mean() <= ci["accuracy_ci95_runs"][1]
    assert 0.89 <= hits_problems / 150 <= 0.99 and 0.89 <= hits_runs / 150 <= 0.99
    one = pd.DataFrame({"n": 1, "c": [1, 0, 1], "acc": [1.0, 0.0, 1.0]})
    assert ev.accuracy_cis(one)["accuracy_ci95_runs"] is None   # greedy: no resampling of runs


def test_paired_interval_covers_the_true_difference_in_a_seeded_simulation():
    rng = np.random.default_rng(7)
    hits = 0
    for t in range(100):
        p = rng.beta(2, 2, size=60)
        base, model = rng.binomial(4, p) / 4, rng.binomial(4, np.clip(p + 0.05, 0, 1)) / 4
        true = 100 * (np.clip(p + 0.05, 0, 1) - p).mean()
        tok = rng.lognormal(6, 0.5, size=60)
        pair = pd.DataFrame({"acc": model, "acc_base": base, "tokens": tok * 0.7, "tokens_base": tok})
        r = ev.paired_comparison([pair], n_boot=400, seeds=[t], n_perm=200)
        hits += r["acc_diff_ci95"][0] <= true <= r["acc_diff_ci95"][1]
        assert r["token_reduction_ci95"] == pytest.approx([0.3, 0.3]) and r["token_reduction_beyond_noise"]
    assert hits >= 88


def test_paired_pvalues_small_for_a_big_difference_large_for_none():
    rng = np.random.default_rng(0)
    assert ev.paired_pvalue(rng.normal(1.0, 1, 100)) < 0.001
    null = [ev.paired_pvalue(rng.normal(0, 1, 40), n_perm=300, seed=i) for i in range(200)]
    assert 0.4 < np.mean(null) < 0.6 and np.mean(np.array(null) < 0.05) < 0.1   # about uniform under no difference
    # greedy (+-1 differences): McNemar's exact test; 9 won, 1 lost of 10 discordant problems
    d = np.array([1] * 9 + [-1] + [0] * 20)
    from math import comb
    assert ev.paired_pvalue(d) == pytest.approx(2 * (comb(10, 0) + comb(10, 1)) / 2 ** 10)
    assert ev.paired_pvalue(np.zeros(5)) == 1.0


def test_budget_curve_counts_longer_samples_as_unfinished():
    df = pd.DataFrame({"num_tokens": [10, 50, 100, 200], "correct": [True, False, True, True]})
    c = ev.budget_curve(df, [10, 99, 100, 200])
    assert c["accuracy"] == [25.0, 25.0, 50.0, 75.0] and c["within_budget"] == [0.25, 0.5, 0.75, 1.0]
    g = ev.budget_grid(8192)
    assert g[0] == 32 and g[-1] == 8192 and len(g) == 17 and all(b > a for a, b in zip(g, g[1:]))


def _metric_is(value, kind):
    if kind == "number": return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if kind == "ci":
        return isinstance(value, list) and len(value) == 2 and all(map(math.isfinite, value)) and value[0] <= value[1]
    if kind == "bool": return isinstance(value, bool)
    if kind == "pvalue": return isinstance(value, float) and 0 < value <= 1
    raise AssertionError(kind)


def test_report_statistics_on_hand_made_stores(tmp_path):
    run = tmp_path / "run"
    _make_run(run)   # greedy, n = 1
    res = ev.report_from_stores(run, base="base", plots=False)
    text = (run / "metrics.json").read_text()
    met = json.loads(text, parse_constant=lambda c: pytest.fail(f"metrics.json holds {c}"))
    assert met == res
    b, p = met["metrics"]["base"]["dsA"], met["metrics"]["pruned"]["dsA"]
    assert b["acc_std"] is None and b["accuracy_ci95_runs"] is None   # one run: no spread, written null (not NaN)
    assert list(b["pass_at_k"]) == ["1"] and b["pass_at_k"]["1"] == pytest.approx(80.0)
    assert b["acc_diff"] is None and b["token_reduction_ci95"] is None   # no comparison of the base with itself
    assert p["acc_diff"] == 0 and p["acc_diff_ci95"] == [0, 0] and p["acc_diff_pvalue"] == 1.0
    assert p["token_reduction_ci95"] == pytest.approx([0.5, 0.5]) and p["token_reduction_beyond_noise"] is True
    pb = met["metrics"]["pruned"]["dsB"]      # 3/4 vs 2/4: one discordant problem, McNemar p = 1
    assert pb["acc_diff"] == pytest.approx(25.0) and pb["acc_diff_pvalue"] == 1.0 and not pb["acc_diff_beyond_noise"]
    assert set(met["metrics"]["pruned"]["average"]) >= {"accuracy_ci95", "acc_diff_ci95", "token_reduction_ci95"}
    assert met["difficulty_rule"] == "base_acc" and set(p["by_difficulty"]) == {"base 100%", "base 0%"}
    assert p["budget_curve"]["accuracy"][-1] == pytest.approx(p["accuracy"]) and p["budget_forcing"] is None
    lead = "pruned vs base on dsA: token reduction 50.0%"
    assert any(v.startswith(lead) and "**beyond noise**" in v for v in met["verdicts"])
    assert met["environment"]["report"]["packages"]["numpy"] == np.__version__
    cols = next(csv.reader((run / "details.csv").open()))
    assert {"accuracy_ci95_lo", "accuracy_ci95_hi", "pass_at_1", "acc_diff_pvalue"} <= set(cols)
    report = (run / "report.md").read_text()
    for head in ("## Beyond noise?", "## Accuracy with 95% intervals", "## pass@k, maj@k",
                 "## Thinking and answer tokens", "## By difficulty (base_acc)", "## Accuracy vs token budget",
                 "## Environment"):
        assert head in report, head


def test_budget_forcing_settings_are_validated():
    assert ev.EvalConfig(budget_forcing=["64,32", "128"], max_tokens=256).budget_forcing == [32, 64, 128]
    with pytest.raises(ValueError, match="must be in"):
        ev.EvalConfig(budget_forcing=["256"], max_tokens=256)
    with pytest.raises(ValueError, match="not a whole number"):
        ev.EvalConfig(budget_forcing=["many"])
    from o1_pruner.config import ConfigError
    with pytest.raises(ConfigError, match="budget_forcing"):
        ev.evaluate_cli(["--models", "a=b", "--budget_forcing", "0"])


def test_budget_force_cuts_long_samples_and_asks_for_the_answer(tmp_path):
    from o1_pruner.sampling import backend_for
    from o1_pruner.toy import make_problems, reference_path
    make_problems(3, split="test").to_json(str(tmp_path / "toy.jsonl"))
    store = tmp_path / "store"
    kw = dict(max_tokens=96, backend="transformers", device="cpu", system=None, user_template="{problem}",
              progress=False)
    ev.generate_model_stores(str(reference_path()), [(str(tmp_path / "toy.jsonl"), str(store))], kw)
    src = load_samples(store).set_index("problem_id")
    backend = backend_for(ev.eval_store_config(str(reference_path()), str(tmp_path / "toy.jsonl"), store, **kw))
    budget = int(src["num_tokens"].median())
    assert ev.budget_force(store, tmp_path / "forced", budget, backend, answer_tokens=8) == 3
    out = load_samples(tmp_path / "forced").set_index("problem_id")
    for pid, r in out.iterrows():
        o = src.loc[pid]
        if o["num_tokens"] <= budget:   # short samples are kept as they were
            assert not r["forced"] and r["completion"] == o["completion"] and r["num_tokens"] == o["num_tokens"]
        else:   # long ones: the first `budget` characters (the toy's tokens), the cue, an answer
            assert r["forced"] and r["completion"].startswith(o["completion"][:budget - 6])
            assert "The final answer is \\boxed{" in r["completion"] and r["num_tokens"] <= budget + 40
    assert out["forced"].any() and not out["forced"].all()
    assert ev.budget_force(store, tmp_path / "forced", budget, backend, answer_tokens=8) == 0   # resumes: nothing to do
    with pytest.raises(ValueError, match="different configuration"):
        ev.budget_force(store, tmp_path / "forced", budget, backend, answer_tokens=4)


def test_evaluate_cli_on_the_toy_writes_every_statistic(tmp_path):
    """`o1-pruner evaluate --n 4 --temperature 0.7` on the toy: every new field, finite or null as specified."""
    from o1_pruner.testing import run_cli, save_tiny_model
    from o1_pruner.toy import make_problems, reference_path
    make_problems(8, split="test").to_json(str(tmp_path / "toy.jsonl"))
    ref, rnd = reference_path(), save_tiny_model(tmp_path / "random")
    run = tmp_path / "run"
    run_cli("evaluate", "--models", f"base={ref}", f"same={ref}", f"random={rnd}",
            "--datasets", f"toy={tmp_path / 'toy.jsonl'}",
            "--n", 4, "--temperature", 0.7, "--max_tokens", 128, "--system", "none", "--user_template", "{problem}",
            "--backend", "transformers", "--device", "cpu", "--batch_size", 32, "--n_boot", 500,
            "--budget_forcing", "24,48", "--output_dir", run)
    met = json.loads((run / "metrics.json").read_text(), parse_constant=lambda c: pytest.fail(f"NaN/inf: {c}"))
    assert met["models"] == ["base", "same", "random"] and met["difficulty_rule"] == "level"
    for m in met["models"]:
        for d in ("toy", "average"):
            x = met["metrics"][m][d]
            assert _metric_is(x["accuracy"], "number") and _metric_is(x["accuracy_ci95"], "ci"), (m, d)
            assert _metric_is(x["accuracy_ci95_runs"], "ci"), (m, d)
            for k in ("thinking_tokens", "answer_tokens"):   # both models think in <think> blocks
                assert _metric_is(x[k], "number"), (m, d, k)
            if m == "base":
                assert all(x[k] is None for k in ev.PAIRED_KEYS)
            else:
                for k, kind in (("acc_diff", "number"), ("acc_diff_ci95", "ci"), ("acc_diff_pvalue", "pvalue"),
                                ("token_reduction_ci95", "ci"), ("token_reduction_pvalue", "pvalue"),
                                ("acc_diff_beyond_noise", "bool"), ("token_reduction_beyond_noise", "bool")):
                    assert _metric_is(x[k], kind), (m, d, k, x[k])
        x = met["metrics"][m]["toy"]
        assert list(x["pass_at_k"]) == ["1", "2", "4"] and list(x["maj_at_k"]) == ["1", "2", "4"]
        assert all(_metric_is(v, "number") for v in [*x["pass_at_k"].values(), *x["maj_at_k"].values()])
        assert x["pass_at_k"]["1"] == pytest.approx(x["accuracy"]) and x["pass_at_k"]["4"] >= x["pass_at_k"]["1"]
        assert x["thinking_tokens"] + x["answer_tokens"] == pytest.approx(x["mean_tokens"])
        assert set(x["by_difficulty"]) <= {"2", "3", "4"}
        assert sum(g["n_problems"] for g in x["by_difficulty"].values()) == 8
        curve, forced = x["budget_curve"], x["budget_forcing"]
        assert curve["budgets"][-1] == 128 and {24, 48} <= set(curve["budgets"])
        assert curve["accuracy"] == sorted(curve["accuracy"])
        assert curve["accuracy"][-1] == pytest.approx(x["accuracy"])
        assert forced["budgets"] == [24, 48]
        assert all(_metric_is(v, "number") for v in forced["accuracy"] + forced["mean_tokens"])
    same = met["metrics"]["same"]["toy"]   # the same weights and seeds: identical samples, nothing beyond noise
    assert same["acc_diff"] == 0 and same["acc_diff_pvalue"] == 1 and not same["token_reduction_beyond_noise"]
    rnd_ = met["metrics"]["random"]["toy"]  # random weights: never right
    assert rnd_["accuracy"] == 0 and rnd_["acc_diff_beyond_noise"] and rnd_["acc_diff_ci95"][1] < 0
    env = met["environment"]
    assert env["settings"]["dtype"] == "auto" and env["settings"]["batch_size"] == 32 and env["settings"]["seed"] == 0
    assert len(env["config_hash"]) == 16 and env["stores"]["base"]["toy"]["runtime"]["dtype"] == "float32"
    assert env["stores"]["base"]["toy"]["generated_with"]["packages"]["torch"] == env["report"]["packages"]["torch"]
    assert env["report"]["packages"]["transformers"] and "vllm" in env["report"]["packages"]
    assert len(met["verdicts"]) == 2 and all("noise" in v for v in met["verdicts"])
    report = (run / "report.md").read_text()
    assert "## Beyond noise?" in report and "plots/budget_curve.png" in report
    assert (run / "plots" / "budget_curve.png").is_file()
    assert "| random | toy | budget forcing |" in report


def test_evaluate_help_lists_the_new_options(capsys):
    with pytest.raises(SystemExit) as e:
        ev.evaluate_cli(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "--budget_forcing" in out and "--n_boot" in out and "95 percent" in out
