"""Stage 2: sample loading, per-problem statistics, length quartiles, redundancy signals, analyze CLI."""
from __future__ import annotations

import json
import warnings

import datasets
import numpy as np
import pandas as pd
import pytest

from o1_pruner.analysis import (add_sample_signals, analyze, analyze_cli, answers_match, bucket_table, count_markers,
                                difficulty_bucket, first_correct_position, length_quartile_table, length_quartiles,
                                per_problem_stats)
from o1_pruner.store import SampleStore, load_samples, store_config, store_fingerprint
from o1_pruner.testing import write_store as _write


def rec(pid, i, n, correct, completion="x", gold="4", finish="stop", extracted="4", **kw):
    r = dict(problem_id=pid, sample_idx=i, problem=f"problem {pid}", gold=gold, prompt="p", completion=completion,
             num_tokens=n, thinking_tokens=None, finish_reason=finish, extracted=extracted, correct=correct, grade_reason="")
    r.update(kw)
    return r


def write_store(path, shards, config=None, tail=""):
    "One shard file per list of rows, through the store's writer; `tail` appended raw to the last (a torn write)."
    for k, rows in enumerate(shards): _write(path, rows, config or {"model": "tiny"}, k, len(shards))
    if tail:
        with open(SampleStore(path).shard_files()[-1], "a") as f: f.write(tail)
    return path


def test_load_samples_torn_line_duplicates_and_shards(tmp_path):
    rows_a = [rec("p1", 0, 10, True), rec("p1", 1, 20, False)]
    rows_b = [rec("p2", 0, 30, True), rec("p1", 1, 99, True)]  # duplicate of (p1, 1): first one kept
    store = write_store(tmp_path / "s", [rows_a, rows_b], tail='{"problem_id": "p3", "sam')
    with pytest.warns(UserWarning, match="1 torn last line.*1 duplicate"):
        df = load_samples(store)
    assert len(df) == 3
    assert df.set_index(["problem_id", "sample_idx"]).loc[("p1", 1), "num_tokens"] == 20
    rep = df.attrs["load_report"]
    assert rep["torn_lines"] == 1 and rep["duplicates"] == 1 and len(SampleStore(store).shard_files()) == 2
    assert store_config(store)["spec"] == {"model": "tiny"}
    fp = store_fingerprint(store)
    assert fp["records"] == 3 and len(fp["fingerprint"]) == 16  # the records the reader keeps


def test_load_samples_bad_middle_line_counted(tmp_path):
    store = write_store(tmp_path / "s", [[rec("p", 0, 5, True)]])
    shard = SampleStore(store).shard_files()[0]
    with open(shard, "a") as f: f.write("not json\n" + json.dumps(rec("p", 1, 6, False)) + "\n")
    with pytest.warns(UserWarning, match="1 corrupt line.*samples-000-of-001.jsonl:2"):
        recs = SampleStore(store).records()
    with pytest.warns(UserWarning, match="1 corrupt line"):
        df = load_samples(store)
    assert len(recs) == len(df) == 2 and df.attrs["load_report"]["bad_lines"] == 1


def test_load_samples_other_sources_and_errors(tmp_path):
    rows = [rec("p", 0, 5, True), rec("p", 1, 6, False)]
    df = pd.DataFrame(rows)
    assert load_samples(df).equals(load_samples(datasets.Dataset.from_pandas(df)))
    assert list(load_samples(df.drop(columns=["finish_reason", "extracted"])).finish_reason) == ["stop", "stop"]
    with pytest.raises(ValueError, match=r"lack required field\(s\) \['num_tokens'\]"):
        load_samples(df.drop(columns=["num_tokens"]))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_samples(tmp_path / "nope")

    store = write_store(tmp_path / "s", [rows])
    assert len(load_samples(SampleStore(store))) == 2


def test_buckets_and_edges():
    assert [difficulty_bucket(a) for a in (1.0, 0.8, 0.79, 0.3, 0.29, 0.0)] == \
        ["easy", "easy", "medium", "medium", "hard", "unsolved"]
    assert difficulty_bucket(0.5, hard_below=0.6, easy_at=0.9) == "hard"
    with pytest.raises(ValueError):
        per_problem_stats(load_samples(pd.DataFrame([rec("p", 0, 1, True)])), hard_below=0.9, easy_at=0.5)


def sample_frame():
    rows = [rec("e", i, n, c) for i, (n, c) in enumerate([(10, True), (20, True), (30, True), (40, True), (50, False)])]
    rows += [rec("h", i, n, c, finish=f, extracted=x)
             for i, (n, c, f, x) in enumerate([(100, True, "stop", "4"), (300, False, "stop", "3"),
                                               (200, False, "stop", None), (400, False, "length", None)])]
    return load_samples(pd.DataFrame(rows))


def test_per_problem_stats_numbers():
    st = per_problem_stats(sample_frame()).set_index("problem_id")
    assert st.loc["e", "n"] == 5 and st.loc["e", "lbar"] == 30 and st.loc["e", "median_tokens"] == 30
    assert st.loc["e", "std_tokens"] == pytest.approx(np.std([10, 20, 30, 40, 50]))
    assert st.loc["e", "abar"] == 0.8 and st.loc["e", "bucket"] == "easy"
    assert st.loc["e", "len_correct"] == 25 and st.loc["e", "len_wrong"] == 50
    assert st.loc["h", "abar"] == 0.25 and st.loc["h", "bucket"] == "hard"
    assert st.loc["h", "len_wrong"] == 300 and st.loc["h", "truncation_rate"] == 0.25
    assert st.loc["h", "no_answer_rate"] == 0.5


def test_length_quartiles_within_and_global():
    q = length_quartiles(sample_frame()).set_index(["problem_id", "sample_idx"])
    # e: 5 samples ranks 0..4 -> 4r//5+1 = 1,1,2,3,4 ; h: lengths 100,300,200,400 -> ranks 0,2,1,3
    assert q.loc["e", "q_within"].tolist() == [1, 1, 2, 3, 4]
    assert q.loc["h", "q_within"].tolist() == [1, 3, 2, 4]
    # global: 9 samples sorted 10..50,100,200,300,400 -> 4r//9+1
    assert q["q_global"].sort_values().tolist() == [1, 1, 1, 2, 2, 3, 3, 4, 4]
    t = length_quartile_table(sample_frame())
    assert t["acc_within"].tolist() == pytest.approx([1.0, 0.5, 0.5, 0.0])
    assert t["n_within"].tolist() == [3, 2, 2, 2]
    assert t["acc_global"].tolist() == pytest.approx([1.0, 0.5, 0.5, 0.0])  # Q2 = {40 right, 50 wrong}
    assert t["n_global"].tolist() == [3, 2, 2, 2] and t["tokens_global"].tolist() == [20, 45, 150, 350]


def test_markers_and_first_correct():
    assert count_markers("WAIT. wait, Hmm... Let me double check; let me verify; Alternatively, recheck and re-check") == \
        {"wait": 2, "hmm": 1, "alternatively": 1, "double_check": 1, "verify": 1, "recheck": 2}
    assert sum(count_markers("the waiter checks, hmmm no").values()) == 1  # only 'hmmm'
    assert first_correct_position("so x = 4. wait \\boxed{4}", "4") == len("so x = 4")
    assert first_correct_position("x = 45 and \\boxed{4}", "4") == len("x = 45 and \\boxed{4}")
    assert first_correct_position("The answer is: $12$.", "12") == len("The answer is: $12")
    assert first_correct_position("\\boxed{\\dfrac{1}{2}} then", "\\frac{1}{2}") == len("\\boxed{\\dfrac{1}{2}}")
    assert first_correct_position("\\boxed{0.50}", "0.5") == len("\\boxed{0.50}")
    assert first_correct_position("= 4.5", "4") is None
    assert first_correct_position("nothing", "4") is None and first_correct_position("x", None) is None
    assert answers_match("\\text{(A)}", "(A)") and not answers_match("", "")


def test_sample_signals_with_and_without_tokenizer(char_tokenizer):
    text = "2+2 = 4. Wait, let me double check. \\boxed{4}"
    df = load_samples(pd.DataFrame([rec("p", 0, 40, True, completion=text), rec("p", 1, 10, False, completion="no")]))
    s = add_sample_signals(df)
    p = len("2+2 = 4")
    assert s.loc[0, "first_correct_char"] == p
    assert s.loc[0, "after_first_correct_frac"] == pytest.approx((len(text) - p) / len(text))
    assert s.loc[0, "tokens_after_first_correct"] == pytest.approx(40 * (len(text) - p) / len(text))
    assert s.loc[0, "recheck_markers"] == 2 and s.loc[1, "recheck_markers"] == 0
    assert np.isnan(s.loc[1, "after_first_correct_frac"])
    s2 = add_sample_signals(df, tokenizer=char_tokenizer)  # one token per character
    assert s2.loc[0, "tokens_after_first_correct"] == len(text) - p
    bt = bucket_table(s, per_problem_stats(s)).set_index("bucket")
    assert bt.loc["medium", "recheck_per_sample"] == 1.0 and bt.loc["easy", "problems"] == 0


def test_analyze_cli_end_to_end(tmp_path, capsys):
    rows = [rec("e", i, 10 * (i + 1), i < 3, completion="= 4 wait" if i else "\\boxed{4}") for i in range(4)]
    rows += [rec("u", i, 50 + i, False, extracted="3", completion="hmm \\boxed{3}") for i in range(4)]
    store = write_store(tmp_path / "store", [rows])
    out = tmp_path / "out"
    from o1_pruner.cli import main
    assert main(["analyze", "--store", str(store), "--output_dir", str(out), "--easy_at", "0.7"]) == 0
    printed = capsys.readouterr().out
    assert "8 samples, 2 problems" in printed and "Q1" in printed
    for f in ("problem_stats.parquet", "problem_stats.csv", "length_quartiles.csv", "by_bucket.csv", "summary.json",
              "length_by_bucket.png", "accuracy_by_length_quartile.png", "lbar_vs_abar.png", "sample_signals.parquet"):
        assert (out / f).stat().st_size > 0, f
    summ = json.loads((out / "summary.json").read_text())
    assert summ["buckets"] == {"easy": 1, "medium": 0, "hard": 0, "unsolved": 1}
    assert summ["accuracy"] == pytest.approx(3 / 8) and summ["marker_totals"]["wait"] == 3
    assert summ["marker_totals"]["hmm"] == 4
    st = pd.read_parquet(out / "problem_stats.parquet")
    assert st.set_index("problem_id").loc["e", "lbar"] == 25
    assert main(["analyze", "--store", str(tmp_path / "missing"), "--output_dir", str(out)]) == 2
    empty = tmp_path / "empty"; empty.mkdir()
    assert main(["analyze", "--store", str(empty), "--output_dir", str(out)]) == 2
    assert analyze(store, easy_at=0.7)["summary"]["problems"] == 2


# --- stores from the real sample stage: few samples, many ties -----------------------------------------------------

@pytest.mark.parametrize("k", [1, 2, 3])
def test_plots_with_few_samples_and_all_ties(tmp_path, k):
    """K < 4 leaves within-problem quartiles empty; 128-token truncated, all-wrong samples tie everywhere."""
    rows = [rec(f"p{p}", i, 128, False, finish="length", extracted=None) for p in range(5) for i in range(k)]
    res = analyze(pd.DataFrame(rows))
    from o1_pruner.analysis import plot_analysis
    paths = plot_analysis(res["samples"], res["stats"], tmp_path, res["quartiles"])
    assert [p.name for p in paths] == ["length_by_bucket.png", "accuracy_by_length_quartile.png", "lbar_vs_abar.png"]
    assert all(p.stat().st_size > 0 for p in paths)
    qt = res["quartiles"].set_index("quartile")
    assert qt["n_within"].sum() == qt["n_global"].sum() == 5 * k and (qt["acc_global"].fillna(0) == 0).all()
    assert res["summary"]["truncation_rate"] == 1.0 and res["summary"]["buckets"]["unsolved"] == 5


def test_analyze_cli_on_a_real_k2_store(tmp_path, tiny_model_dir, capsys):
    """`o1-pruner analyze` on a store written by the real `sample` stage with K=2 and short max_tokens."""
    from o1_pruner.cli import main
    from o1_pruner.sampling import SampleConfig, sample
    problems = tmp_path / "problems.jsonl"
    rows = [{"id": f"p{i}", "problem": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(6)]
    problems.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = SampleConfig(model=str(tiny_model_dir), dataset=str(problems), k=2, temperature=1.0, top_p=1.0, max_tokens=6,
                       backend="transformers", batch_size=12, output_dir=str(tmp_path / "samples"), progress=False)
    store = sample(cfg)
    df = store.to_pandas()
    assert len(df) == 12 and (df.finish_reason == "length").mean() > 0.5  # random weights: most samples cut at 6 tokens
    out = tmp_path / "analysis"
    assert main(["analyze", "--store", str(store.path), "--output_dir", str(out)]) == 0
    summ = json.loads((out / "summary.json").read_text())
    assert summ["samples"] == 12 and summ["samples_per_problem"] == {"min": 2, "max": 2}
    assert summ["plots"] == ["length_by_bucket.png", "accuracy_by_length_quartile.png", "lbar_vs_abar.png"]
    assert "12 samples, 6 problems" in capsys.readouterr().out


def test_other_finish_reasons_are_read_as_they_are_and_counted(tmp_path, capsys):
    """vLLM's "abort", a null (unfinished) or a newer reason: kept (not turned into "stop"), counted, printed."""
    rows = [rec("p", 0, 10, True), rec("p", 1, 20, False, finish="abort"), rec("p", 2, 30, False, finish=None),
            rec("q", 0, 40, False, finish="length"), rec("q", 1, 50, False, finish="repetition")]
    store = write_store(tmp_path / "s", [rows])
    df = load_samples(store)
    assert df["finish_reason"].eq("stop").sum() == 1 and df["finish_reason"].isna().sum() == 1
    summ = analyze(store)["summary"]
    assert summ["other_finish_reasons"] == {"None": 1, "abort": 1, "repetition": 1}
    assert summ["truncation_rate"] == pytest.approx(1 / 5)
    assert load_samples(pd.DataFrame(rows).drop(columns=["finish_reason"]))["finish_reason"].eq("stop").all()
    out = tmp_path / "out"
    assert analyze_cli(["--store", str(store), "--output_dir", str(out), "--plots", "false"]) == 0
    assert "not finished normally: 3 samples (None 1, abort 1, repetition 1)" in capsys.readouterr().out
    assert json.loads((out / "summary.json").read_text())["other_finish_reasons"]["abort"] == 1
