"""`o1-pruner import-samples` (o1_pruner.rollouts): sources, shapes, fields, token counts, grading, labels, errors,
idempotent reruns, and the imported store through analyze, build-dataset and export."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import datasets
import pandas as pd
import pytest
from transformers import AutoTokenizer

from o1_pruner.config import ConfigError
from o1_pruner.rollouts import (ImportConfig, RowError, completion_lengths, detect_fields, import_samples,
                                import_samples_cli, math_test_generations, parse_label)
from o1_pruner.sampling import thinking_tokens
from o1_pruner.backends import Completion
from o1_pruner.store import SampleStore, load_samples
from o1_pruner.testing import run_cli
from o1_pruner.toy import reference_path

BUDGET = 1500  # characters = tokens of the char tokenizer: the generation budget of the truncated sample
ODD = ["--id_field", "qid", "--problem_field", "q_text", "--answer_field", "gold_ans", "--completions_field", "outs",
       "--labels_field", "judge", "--finish_field", "stops"]
MODULES = {"import-samples": "o1_pruner.rollouts", "export": "o1_pruner.rewards"}


def cli(*args) -> subprocess.CompletedProcess:
    "A command as a user types it: `o1-pruner CMD` once cli.py registers it, `python -m o1_pruner.MODULE` until then."
    from o1_pruner.cli import COMMANDS
    if args[0] in COMMANDS: return run_cli(*args)
    env = dict(os.environ, TOKENIZERS_PARALLELISM="false", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", MODULES[args[0]], *map(str, args[1:])]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` exited {p.returncode}:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    return p


def gsm8k_generations(path:Path, shared_data:Path, n:int=6) -> Path:
    """K=4 completions of real GSM8K train problems, per problem, with odd field names: the real worked solution
    (right), the same with a wrong final number, a `<think>` version (right), and one cut at BUDGET tokens."""
    rows = [json.loads(l) for l in (shared_data / "gsm8k" / "train.jsonl").read_text().splitlines()[:n]]
    with open(path, "w") as f:
        for i, r in enumerate(rows):
            sol, _, ans = r["answer"].rpartition("####")
            ans = ans.strip()
            wrong = f"{sol}#### {int(ans.replace(',', '')) + 1}"
            think = (f"<think>{sol.strip()}\nWait, let me check that again. {sol.strip()}</think>\n"
                     f"The answer is \\boxed{{{ans}}}.")
            cut = ("Let me re-check every step once more. " * 60)[:BUDGET]
            f.write(json.dumps({"qid": f"g{i}", "q_text": r["question"], "gold_ans": r["answer"],
                                "outs": [r["answer"], wrong, think, cut], "judge": ["yes", "no", "yes", "yes"],
                                "stops": ["stop", "eos", None, "max_tokens"]}) + "\n")
    return path


def _import(tmp_path, src, tok, *extra, out="store"):
    return import_samples_cli(["--source", str(src), "--output_dir", str(tmp_path / out), "--tokenizer", str(tok),
                               *map(str, extra)])


# ---------------------------------------------------------------- the done-when path, through the commands as typed
def test_odd_fields_through_analyze_build_dataset_and_export(tmp_path, tiny_model_dir, shared_data):
    src = gsm8k_generations(tmp_path / "gens.jsonl", shared_data)
    p = cli("import-samples", "--source", src, "--output_dir", tmp_path / "store", "--tokenizer", tiny_model_dir, *ODD)
    assert "imported 24 samples of 6 problems" in p.stdout and "6 disagree with the grader" in p.stdout
    df = load_samples(tmp_path / "store")
    assert len(df) == 24 and df.groupby("problem_id").size().eq(4).all()
    assert df.groupby("sample_idx")["correct"].mean().tolist() == [1.0, 0.0, 1.0, 0.0]
    assert df.groupby("sample_idx")["finish_reason"].first().tolist() == ["stop", "stop", "stop", "length"]
    assert (df.loc[df.sample_idx == 3, "num_tokens"] == BUDGET).all()
    tok = AutoTokenizer.from_pretrained(str(tiny_model_dir))
    for r in df.itertuples():   # the named tokenizer's count, +1 end-of-turn token when finished
        n = len(tok(r.completion, add_special_tokens=False)["input_ids"])
        assert r.num_tokens == n + (r.finish_reason == "stop")
    assert df["thinking_tokens"].notna().tolist() == (df["sample_idx"] == 2).tolist()
    run_cli("analyze", "--store", tmp_path / "store", "--output_dir", tmp_path / "analysis")
    summary = json.loads((tmp_path / "analysis" / "summary.json").read_text())
    assert summary["samples"] == 24 and summary["accuracy"] == 0.5 and summary["truncation_rate"] == 0.25
    run_cli("build-dataset", "--store", tmp_path / "store", "--output_dir", tmp_path / "rewarded", "--score_reference",
            "false", "--samples_per_problem", "0")
    ds = datasets.load_from_disk(str(tmp_path / "rewarded"))
    assert len(ds) == 24 and "ref_logp" not in ds.column_names
    cli("export", "--format", "verl", "--store", tmp_path / "store", "--dataset", tmp_path / "rewarded", "--output_dir",
        tmp_path / "verl", "--max_response_length", BUDGET)
    pq = pd.read_parquet(tmp_path / "verl" / "train.parquet")
    assert len(pq) == 6 and (tmp_path / "verl" / "o1_pruner_reward.py").exists()
    info = pq.loc[0, "extra_info"]
    assert sorted(info) == ["abar", "index", "k", "lbar", "problem_id"] and info["k"] == 4


def test_rerun_is_idempotent_and_a_changed_source_is_refused(tmp_path, tiny_model_dir, shared_data, capsys):
    src = gsm8k_generations(tmp_path / "gens.jsonl", shared_data, n=3)
    assert _import(tmp_path, src, tiny_model_dir, *ODD) == 0
    shards = {p: p.read_bytes() for p in SampleStore(tmp_path / "store").shard_files()}
    meta = SampleStore(tmp_path / "store").meta
    assert meta["spec"]["import"]["source"] == str(src.resolve()) and len(meta["spec"]["import"]["content"]) == 16
    assert _import(tmp_path, src, tiny_model_dir, *ODD) == 0
    rep = json.loads((tmp_path / "store" / "import_report.json").read_text())
    assert (rep["written"], rep["already_present"]) == (0, 12)
    assert {p: p.read_bytes() for p in SampleStore(tmp_path / "store").shard_files()} == shards
    # an interrupted import (half the records) is completed, not duplicated
    recs = [json.loads(l) for l in next(iter(shards)).read_text().splitlines()]
    next(iter(shards)).write_text("".join(json.dumps(r) + "\n" for r in recs[:5]))
    assert _import(tmp_path, src, tiny_model_dir, *ODD) == 0
    assert len(load_samples(tmp_path / "store")) == 12
    assert load_samples(tmp_path / "store")["correct"].tolist() == [r["correct"] for r in sorted(
        recs, key=lambda r: (r["problem_id"], r["sample_idx"]))]
    new = {"qid": "new", "q_text": "1+1?", "gold_ans": "2", "outs": ["2"]}
    with open(src, "a") as f: f.write(json.dumps(new) + "\n")
    with pytest.raises(ConfigError, match="different configuration"):
        _import(tmp_path, src, tiny_model_dir, *ODD)
    assert _import(tmp_path, src, tiny_model_dir, *ODD, "--overwrite", "true") == 0
    assert len(load_samples(tmp_path / "store")) == 13


# ---------------------------------------------------------------- bad input: one clear line, or a counted skip
def test_malformed_rows_name_file_row_and_fields(tmp_path, tiny_model_dir):
    src = tmp_path / "bad.jsonl"
    rows = [{"qid": "a", "q_text": "1+1?", "gold_ans": "2", "outs": ["\\boxed{2}", "\\boxed{3}"]},
            {"qid": "b", "q_text": "2+2?", "gold_ans": "4", "outs": "\\boxed{4}"},
            {"qid": "c", "q_text": "3+3?", "gold_ans": "6", "outs": ["\\boxed{6}", None, 7]}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = ODD[:8]
    with pytest.raises(ConfigError) as e:
        _import(tmp_path, src, tiny_model_dir, *args)
    assert f"{src}: row 1: completions field 'outs' holds a str, not a list" in str(e.value)
    assert "its fields are ['gold_ans', 'outs', 'q_text', 'qid']" in str(e.value)
    assert not (tmp_path / "store").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _import(tmp_path, src, tiny_model_dir, *args, "--skip_bad_rows", "true") == 0
    rep = json.loads((tmp_path / "store" / "import_report.json").read_text())
    assert (rep["rows_skipped"], rep["samples_skipped"], rep["samples"]) == (1, 2, 3)
    assert "row 2, completion 1" in rep["first_skipped"][1] and "NoneType" in rep["first_skipped"][1]
    # the whole command: exit code 2 and one line on stderr
    cmd = [sys.executable, "-m", "o1_pruner.rollouts", "--source", str(src), "--output_dir", str(tmp_path / "s2"),
           "--tokenizer", str(tiny_model_dir), *args]
    p = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, TOKENIZERS_PARALLELISM="false"))
    assert p.returncode == 2 and "row 1: completions field 'outs'" in p.stderr and "Traceback" not in p.stderr


def test_empty_completions_missing_answers_and_non_string_values(tmp_path, tiny_model_dir):
    src = tmp_path / "odd.jsonl"
    rows = [{"id": 1, "problem": "6*3?", "answer": 18, "completions": ["", "so \\boxed{18}"], "correct": [0, "True"]},
            {"id": 2, "problem": "Half of 3?", "answer": 1.5, "completions": ["\\boxed{3/2}"]},
            {"id": 3, "problem": "No gold here", "answer": "", "completions": ["\\boxed{1}", "\\boxed{2}"],
             "correct": [True, False]},
            {"id": 4, "problem": "Nor here", "answer": None, "completions": ["\\boxed{1}"]}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ConfigError, match="problem '4': no gold answer and no label"):
        _import(tmp_path, src, tiny_model_dir)
    assert _import(tmp_path, src, tiny_model_dir, "--skip_bad_rows", "true") == 0
    df = load_samples(tmp_path / "store").set_index(["problem_id", "sample_idx"])
    assert df.loc[("1", 0), "num_tokens"] == 1 and df.loc[("1", 0), "grade_reason"] == "empty response"
    assert not df.loc[("1", 0), "correct"] and df.loc[("1", 1), "correct"] and df.loc[("1", 1), "gold"] == "18"
    assert df.loc[("2", 0), "gold"] == "1.5" and df.loc[("2", 0), "correct"]
    assert df.loc[("3", 0), "correct"] and not df.loc[("3", 1), "correct"] and pd.isna(df.loc[("3", 0), "gold"])
    assert df.loc[("3", 0), "grade_reason"] == "no gold answer: label used"
    rep = json.loads((tmp_path / "store" / "import_report.json").read_text())
    assert (rep["empty_completions"], rep["no_gold_label_used"], rep["samples_skipped"]) == (1, 2, 1)
    with pytest.raises(ValueError, match="not a correctness label"):
        parse_label("maybe")
    with pytest.raises(RowError, match="holds a list, not an answer"):
        from o1_pruner.rollouts import parse_row
        row = {"problem": "?", "answer": ["1"], "completions": ["x"]}
        parse_row(row, 0, "f.jsonl", detect_fields(row, "f.jsonl", answer_field="answer"))


def test_labels_kept_beside_the_grade_and_trust_labels(tmp_path, tiny_model_dir, shared_data):
    src = gsm8k_generations(tmp_path / "gens.jsonl", shared_data, n=4)
    assert _import(tmp_path, src, tiny_model_dir, *ODD) == 0
    df = load_samples(tmp_path / "store")
    assert (df["label"] == df["sample_idx"].map({0: True, 1: False, 2: True, 3: True})).all()
    assert (df["grader_correct"] == df["correct"]).all()
    rep = json.loads((tmp_path / "store" / "import_report.json").read_text())["labels"]
    assert (rep["labelled"], rep["disagree"], rep["label_true_grader_false"]) == (16, 4, 4)   # the cut samples
    assert _import(tmp_path, src, tiny_model_dir, *ODD, "--trust_labels", "true", out="trusted") == 0
    t = load_samples(tmp_path / "trusted")
    assert (t["correct"] == t["label"]).all() and t.loc[t.sample_idx == 3, "grade_reason"].str.startswith("label").all()


def test_baselines_read_an_imported_store(tmp_path, tiny_model_dir, shared_data):
    from o1_pruner.baselines import dpo_pairs, shortest_correct
    src = gsm8k_generations(tmp_path / "gens.jsonl", shared_data, n=3)
    assert _import(tmp_path, src, tiny_model_dir, *ODD) == 0
    sft, rep = shortest_correct(tmp_path / "store", k=2)
    assert rep["problems_used"] == 3 and sorted(set(sft["sample_idx"])) == [0, 2]   # the two right ones
    pairs, _ = dpo_pairs(tmp_path / "store")
    assert len(pairs) == 6 and (pairs["rejected_idx"] == 3).all() and (pairs["rejected_tokens"] == BUDGET).all()


# ---------------------------------------------------------------- shapes and formats
def test_per_sample_rows_with_sample_index_and_problem_set(tmp_path, tiny_model_dir):
    from o1_pruner.data import load_problems
    probs = load_problems("gsm8k-test", limit=2).to_list()
    rows = [{"problem_id": p["id"], "sample_idx": j, "id": f"s{i}{j}", "response": f"... \\boxed{{{p['answer']}}}"
             if j == 0 else "I give up.", "finish_reason": "stop"} for i, p in enumerate(probs) for j in (1, 0)]
    src = tmp_path / "run.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ConfigError, match="no problem text"):
        _import(tmp_path, src, tiny_model_dir)
    assert _import(tmp_path, src, tiny_model_dir, "--problems", "gsm8k-test") == 0
    df = load_samples(tmp_path / "store")
    assert df["problem_id"].tolist() == [probs[0]["id"]] * 2 + [probs[1]["id"]] * 2
    assert df["correct"].tolist() == [True, False, True, False] and df["problem"].iloc[0] == probs[0]["problem"]
    rows.append(dict(rows[0]))
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(ConfigError, match="sample index 1 appears twice"):
        _import(tmp_path, src, tiny_model_dir, "--problems", "gsm8k-test", out="dup")


def test_parquet_saved_dataset_folder_and_csv_sources(tmp_path, tiny_model_dir):
    rows = [{"question": "1+1?", "gt": "2", "generations": ["\\boxed{2}", "\\boxed{5}"], "correctness": [True, False],
             "finish_reasons": ["stop", "length"], "uuid": "u1"},
            {"question": "2+3?", "gt": "5", "generations": ["\\boxed{5}"], "correctness": [True],
             "finish_reasons": [None], "uuid": "u2"}]
    pd.DataFrame(rows).to_parquet(tmp_path / "gens.parquet")
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "saved"))
    (tmp_path / "parts").mkdir()
    for i, r in enumerate(rows): (tmp_path / "parts" / f"part{i}.jsonl").write_text(json.dumps(r) + "\n")
    pd.DataFrame([{"problem_id": "u1", "problem": "1+1?", "answer": "2", "completion": "\\boxed{2}", "label": "1"},
                  {"problem_id": "u1", "problem": "1+1?", "answer": "2", "completion": "\\boxed{3}", "label": "0"}]
                 ).to_csv(tmp_path / "gens.csv", index=False)
    frames = {}
    for name in ("gens.parquet", "saved", "parts"):
        assert _import(tmp_path, tmp_path / name, tiny_model_dir, out=f"st-{name}") == 0
        frames[name] = load_samples(tmp_path / f"st-{name}")[["problem_id", "sample_idx", "num_tokens", "correct",
                                                                  "label", "finish_reason"]]
    pd.testing.assert_frame_equal(frames["gens.parquet"], frames["saved"])
    pd.testing.assert_frame_equal(frames["gens.parquet"], frames["parts"])
    assert frames["saved"]["finish_reason"].tolist() == ["stop", "length", "stop"]
    assert frames["saved"]["num_tokens"].tolist() == [10, 9, 10]   # "\boxed{2}" is 9 characters, +1 when finished
    assert frames["saved"]["correct"].tolist() == [True, False, True]
    assert _import(tmp_path, tmp_path / "gens.csv", tiny_model_dir, out="st-csv") == 0
    assert load_samples(tmp_path / "st-csv")["label"].tolist() == [True, False]


def test_hub_source_that_cannot_be_loaded_is_one_line(tmp_path, tiny_model_dir):
    with pytest.raises(ConfigError, match="could not load 'nobody/no-such-generations' from the Hugging Face Hub"):
        _import(tmp_path, "nobody/no-such-generations", tiny_model_dir)
    with pytest.raises(ConfigError, match="no such file"):
        _import(tmp_path, tmp_path / "missing.jsonl", tiny_model_dir)


# ---------------------------------------------------------------- token counts
def test_lengths_with_a_real_bpe_tokenizer_match_stage_one():
    from o1_pruner.testing import smollm2_dir
    tok = AutoTokenizer.from_pretrained(str(smollm2_dir()))
    texts = ["So the answer is \\boxed{42}.", "<think>Hmm, 6*7 = 42.</think>\nThe answer is \\boxed{42}.",
             "<think>still thinking"]
    got = completion_lengths(tok, texts, [True, True, False])
    for t, (n, tt), fin in zip(texts, got, [True, True, False]):
        ids = tok(t, add_special_tokens=False)["input_ids"] + ([tok.eos_token_id] if fin else [])
        assert n == len(ids)
        assert tt == thinking_tokens(tok, "", Completion(t, ids, len(ids), "stop" if fin else "length"))
    head = texts[1][: texts[1].index("</think>") + len("</think>")]
    assert got[0][1] is None and got[1][1] == len(tok(head, add_special_tokens=False)["input_ids"])


def test_math_test_generations_example_file(tmp_path):
    src = math_test_generations(tmp_path / "m.jsonl", 5)
    rows = [json.loads(l) for l in src.read_text().splitlines()]
    assert len(rows) == 5 and all(len(r["attempts"]) == 2 and r["verifier_ok"][0] is True for r in rows)
    assert all("The answer is $\\boxed{" in r["attempts"][1] for r in rows)
    cfg = ImportConfig(source=str(src), output_dir=str(tmp_path / "s"), tokenizer="unused", id_field="item",
                       problem_field="statement", answer_field="target_value", completions_field="attempts",
                       labels_field="verifier_ok")
    tok = AutoTokenizer.from_pretrained(str(reference_path()))
    _, rep = import_samples(cfg, tokenizer=tok)
    df = load_samples(tmp_path / "s")
    assert rep["samples"] == 10 and df.loc[df.sample_idx == 0, "correct"].all()   # MATH's reference solutions
