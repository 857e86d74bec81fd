"""The online length-harmonizing reward (o1_pruner.rewards): one definition, three executors (offline builder, verl
function, TRL function) agreeing on a real imported store; its signs; the verl and TRL exports; TRL GRPO training."""
from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
import warnings

import datasets
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings, strategies as st
from transformers import AutoTokenizer

from o1_pruner.config import ConfigError
from o1_pruner.reward import RewardConfig, build_rewarded_dataset
from o1_pruner.rewards import (compute_score, export_cli, harmonizing_reward, length_harmonizing_reward,
                               reward_settings, score_completions)
from o1_pruner.rollouts import import_samples_cli
from o1_pruner.store import SampleStore, load_samples
from test_rollouts import BUDGET, ODD, gsm8k_generations

DEFAULT_LAM = RewardConfig().lam


@pytest.fixture(scope="module")
def imported(tmp_path_factory, tiny_model_dir, shared_data):
    "A store imported from real GSM8K problems with K=4 completions each (one cut at BUDGET tokens), odd field names."
    root = tmp_path_factory.mktemp("imported")
    src = gsm8k_generations(root / "gens.jsonl", shared_data, n=8)
    assert import_samples_cli(["--source", str(src), "--output_dir", str(root / "store"), "--tokenizer",
                               str(tiny_model_dir), *ODD]) == 0
    return root


def load_verl_module(path):
    "The exported reward module, loaded from its file as verl's `load_extern_object` does."
    spec = importlib.util.spec_from_file_location("custom_module", str(path))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def offline_rewards(store, tok, **cfg):
    "The offline builder's raw reward of every stored sample (all kept, no normalisation), by (problem_id, sample_idx)."
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = build_rewarded_dataset(store, RewardConfig(samples_per_problem=0, normalize="none", **cfg), tokenizer=tok,
                                    verbose=False)
    return {(p, i): r for p, i, r in zip(ds["problem_id"], ds["sample_idx"], ds["reward"])}


# ---------------------------------------------------------------- one reward, three executors
@pytest.mark.parametrize("source", ["gsm8k", "toy"])
@pytest.mark.parametrize("opts", [{}, {"length_field": "thinking_tokens", "lam": 5.0}, {"clip": False}])
def test_three_executors_agree_on_a_real_store(request, tmp_path, opts, source):
    "GSM8K solutions (one cut at the budget per problem) and the toy model's sampled run, each imported."
    root, budget = (request.getfixturevalue("imported"), BUDGET) if source == "gsm8k" else \
        (request.getfixturevalue("toy_run"), TOY_BUDGET)
    store = root / "store"
    tok = AutoTokenizer.from_pretrained(SampleStore(store).meta["spec"]["tokenizer"])
    cfg = RewardConfig(**opts)
    flags = [a for k, v in opts.items() for a in (f"--{k}", str(v).lower())]
    raw = offline_rewards(store, tok, lam=cfg.lam, length_field=cfg.length_field)
    for fmt in ("verl", "trl"):
        assert export_cli(["--format", fmt, "--store", str(store), "--output_dir", str(tmp_path / fmt),
                           "--max_response_length", str(budget), *flags]) == 0
    df = load_samples(store)
    assert (df["finish_reason"] == "length").sum() >= (8 if source == "gsm8k" else 1)   # cut at the budget
    expect = np.array([raw[(p, i)] for p, i in zip(df.problem_id, df.sample_idx)])
    if cfg.clip: expect = np.clip(expect, cfg.clip_low, cfg.clip_high)
    # verl: the exported module, called as verl's naive reward manager calls it (decoded text, no end-of-turn token)
    mod = load_verl_module(tmp_path / "verl" / "o1_pruner_reward.py")
    rows = pd.read_parquet(tmp_path / "verl" / "train.parquet")
    info = {r["extra_info"]["problem_id"]: r for r in rows.to_dict("records")}
    verl = [mod.compute_score(info[p]["data_source"], c, info[p]["reward_model"]["ground_truth"],
                              dict(info[p]["extra_info"]))["score"]
            for p, c in zip(df.problem_id, df.completion)]
    # TRL: the reward function, called as GRPOTrainer calls it (ids up to and including the end-of-turn token)
    trl_ds = datasets.load_from_disk(str(tmp_path / "trl")).to_pandas().set_index("problem_id").loc[df.problem_id]
    ids = [tok(c, add_special_tokens=False)["input_ids"] + ([tok.eos_token_id] if f == "stop" else [])
           for c, f in zip(df.completion, df.finish_reason)]
    trl = length_harmonizing_reward([None] * len(df), [[{"role": "assistant", "content": c}] for c in df.completion],
                                    completion_ids=ids, k=list(trl_ds["k"]),
                                    **{c: list(trl_ds[c]) for c in ("ground_truth", "lbar", "abar", "reward_settings")})
    np.testing.assert_allclose(verl, expect, rtol=0, atol=1e-12)
    np.testing.assert_allclose(trl, expect, rtol=0, atol=1e-12)
    assert len(set(np.round(expect, 6))) > 4   # a real spread of rewards, not a trivial agreement


def test_module_settings_and_reward_kwargs_override(imported, tmp_path):
    assert export_cli(["--format", "verl", "--store", str(imported / "store"), "--output_dir", str(tmp_path),
                       "--lam", "3", "--clip_high", "1.5"]) == 0
    mod = load_verl_module(tmp_path / "o1_pruner_reward.py")
    assert (mod.SETTINGS["lam"], mod.SETTINGS["clip_high"], mod.SETTINGS["max_response_length"]) == (3.0, 1.5, None)
    info = {"lbar": 400.0, "abar": 0.5, "k": 4, "problem_id": "x", "num_turns": None, "rollout_reward_scores": {}}
    right, wrong = "so \\boxed{7}", "so \\boxed{8}"
    assert mod.compute_score("o1_pruner", right, "7", info)["score"] == 1.5   # clipped at clip_high
    # custom_reward_function.reward_kwargs.lam=0: correctness no longer counts
    zero = [mod.compute_score("o", t, "7", info, lam=0)["score"] for t in (right, wrong)]
    assert zero[0] == zero[1]
    batch = mod.compute_score_batch(["o"] * 2, [right, wrong], ["7", "7"], [info, info])
    assert [b["acc"] for b in batch] == [1.0, 0.0] and batch[0]["score"] == 1.5
    text = (tmp_path / "o1_pruner_reward.py").read_text()
    assert f"custom_reward_function.path={tmp_path.resolve() / 'o1_pruner_reward.py'}" in text


# ---------------------------------------------------------------- signs of the reward
@settings(max_examples=200, deadline=None)
@given(st.integers(1, 20000), st.integers(1, 20000), st.floats(1, 20000), st.floats(0, 1), st.booleans())
def test_short_correct_never_below_long_wrong(l1, l2, lbar, abar, clip):
    short, long_ = min(l1, l2), max(l1, l2)
    c = (-2.0, 4.0) if clip else (None, None)
    lam = DEFAULT_LAM
    assert harmonizing_reward(short, 1, lbar, abar, lam, *c) >= harmonizing_reward(long_, 0, lbar, abar, lam, *c)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 20000), st.floats(1, 20000), st.floats(0, 1))
def test_lambda_zero_ignores_correctness(length, lbar, abar):
    assert harmonizing_reward(length, 1, lbar, abar, 0.0) == harmonizing_reward(length, 0, lbar, abar, 0.0)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 60), st.integers(0, 60), st.floats(5, 500), st.floats(0, 1))
def test_signs_hold_through_the_scorer(pad_short, extra, lbar, abar):
    "The same two properties for completions graded and counted by the scorer the verl and TRL functions use."
    from o1_pruner.toy import reference_path
    s = reward_settings(RewardConfig(), str(reference_path()))
    right, wrong = "x" * pad_short + " \\boxed{12}", "x" * (pad_short + extra) + " \\boxed{13}"
    r = score_completions([right, wrong], ["12", "12"], [lbar] * 2, [abar] * 2, s)
    assert r[0]["correct"] and not r[1]["correct"] and r[0]["reward"] >= r[1]["reward"]
    z = score_completions([right, right.replace("12", "13")], ["12", "12"], [lbar] * 2, [abar] * 2, dict(s, lam=0.0))
    assert z[0]["correct"] != z[1]["correct"] and z[0]["reward"] == z[1]["reward"]


# ---------------------------------------------------------------- the exports
def test_verl_parquet_layout(imported, tmp_path):
    assert export_cli(["--format", "verl", "--store", str(imported / "store"), "--output_dir", str(tmp_path),
                       "--data_source", "gsm8k-imported", "--system", "none"]) == 0
    t = pq.read_table(tmp_path / "train.parquet")
    assert t.column_names == ["data_source", "prompt", "ability", "reward_model", "extra_info"]
    row = t.slice(0, 1).to_pylist()[0]
    assert row["data_source"] == "gsm8k-imported" and row["ability"] == "math"
    assert row["prompt"] == [{"role": "user", "content": row["prompt"][0]["content"]}]
    assert row["reward_model"]["style"] == "rule" and row["reward_model"]["ground_truth"] == "72"
    df = load_samples(imported / "store")
    first = df[df.problem_id == row["extra_info"]["problem_id"]]
    assert row["extra_info"]["k"] == 4 and math.isclose(row["extra_info"]["lbar"], first["num_tokens"].mean())
    assert math.isclose(row["extra_info"]["abar"], (first["correct"] & first["finish_reason"].eq("stop")).mean())
    man = json.loads((tmp_path / "export.json").read_text())
    assert man["counts"]["problems"] == 8 and man["store_fingerprint"]["records"] == 32
    assert any(l.startswith("custom_reward_function.path=") for l in man["verl_config"])


def test_export_with_rewarded_dataset_uses_its_options_and_checks_its_statistics(imported, tmp_path, tiny_model_dir):
    from o1_pruner.reward import build_dataset_cli
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert build_dataset_cli(["--store", str(imported / "store"), "--output_dir", str(tmp_path / "rw"),
                                  "--score_reference", "false", "--lam", "5", "--samples_per_problem", "1"]) == 0
    assert export_cli(["--format", "trl", "--store", str(imported / "store"), "--dataset", str(tmp_path / "rw"),
                       "--output_dir", str(tmp_path / "trl")]) == 0
    ds = datasets.load_from_disk(str(tmp_path / "trl"))
    assert json.loads(ds[0]["reward_settings"])["lam"] == 5.0 and len(ds) == 8
    rw = datasets.load_from_disk(str(tmp_path / "rw")).to_pandas().drop_duplicates("problem_id").set_index("problem_id")
    got = ds.to_pandas().set_index("problem_id")
    assert np.allclose(got["lbar"], rw.loc[got.index, "lbar"]) and np.allclose(got["abar"], rw.loc[got.index, "abar"])
    with pytest.raises(ConfigError, match="other reward options"):
        export_cli(["--format", "trl", "--store", str(imported / "store"), "--dataset", str(tmp_path / "rw"),
                    "--output_dir", str(tmp_path / "x"), "--lam", "2.5"])
    # a store changed after build-dataset: its statistics no longer match
    from o1_pruner.testing import write_store
    other = tmp_path / "other"
    recs = load_samples(imported / "store").to_dict("records")
    for r in recs: r["num_tokens"] += r["sample_idx"]
    write_store(other, recs)
    with pytest.raises(ConfigError, match="other statistics than the store gives now"):
        export_cli(["--format", "trl", "--store", str(other), "--dataset", str(tmp_path / "rw"), "--output_dir",
                    str(tmp_path / "y"), "--tokenizer", str(tiny_model_dir)])
    with pytest.raises(ConfigError, match="not a sample store"):
        export_cli(["--store", str(tmp_path), "--output_dir", str(tmp_path / "z")])


def test_problems_without_gold_are_left_out_and_counted(tmp_path, tiny_model_dir):
    src = tmp_path / "g.jsonl"
    rows = [{"id": "a", "problem": "1+1?", "answer": "2", "completions": ["\\boxed{2}", "\\boxed{3}"]},
            {"id": "b", "problem": "?", "completions": ["x", "y"], "correct": [1, 0]}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert import_samples_cli(["--source", str(src), "--output_dir", str(tmp_path / "s"), "--tokenizer",
                               str(tiny_model_dir)]) == 0
    assert export_cli(["--format", "trl", "--store", str(tmp_path / "s"), "--output_dir", str(tmp_path / "t")]) == 0
    man = json.loads((tmp_path / "t" / "export.json").read_text())
    assert (man["counts"]["problems"], man["counts"]["no_gold_skipped"]) == (1, 1)
    assert man["reward_settings"]["tokenizer"] == str(tiny_model_dir.resolve())


def test_reward_functions_import_without_gpu_packages():
    code = "import sys, o1_pruner.rewards; print([m for m in ('vllm', 'deepspeed') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_trl_reward_needs_the_exported_columns():
    with pytest.raises(ValueError, match="export --format trl"):
        length_harmonizing_reward(["p"], ["c"], completion_ids=[[1]])
    with pytest.raises(ValueError, match="lacks lbar/abar"):
        compute_score("o", "x", "1", {"k": 4}, **reward_settings(RewardConfig(), "unused"))
    with pytest.raises(ValueError, match="positive"):
        harmonizing_reward(0, 1, 10, 0.5, 2)


# ---------------------------------------------------------------- TRL GRPO for real
TOY_BUDGET = 96
TOY_FLAGS = ["--id_field", "prob_key", "--problem_field", "prompt_text", "--answer_field", "truth",
             "--completions_field", "gen_text", "--finish_field", "stop_why"]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    "An 'external' run: the toy model's own samples (K=4, sampled) of toy problems, one JSONL row each, odd fields."
    from o1_pruner.toy import generate_batch, load_reference, make_problems
    root = tmp_path_factory.mktemp("toy-run")
    model, tok = load_reference()
    probs = make_problems(6, seed=3, min_terms=2, max_terms=3).to_list()
    import torch
    torch.manual_seed(0)
    gens = generate_batch(model, tok, [p["problem"] for p in probs for _ in range(4)], do_sample=True,
                          temperature=1.0, max_new_tokens=TOY_BUDGET)
    with open(root / "run.jsonl", "w") as f:
        for j, g in enumerate(gens):
            p = probs[j // 4]
            f.write(json.dumps({"prob_key": p["id"], "prompt_text": p["problem"], "truth": p["answer"],
                                "gen_text": g["completion"], "stop_why": g["finish_reason"],
                                "engine_tokens": g["num_tokens"]}) + "\n")
    from o1_pruner.toy import reference_path
    assert import_samples_cli(["--source", str(root / "run.jsonl"), "--output_dir", str(root / "store"), "--tokenizer",
                               str(reference_path()), *TOY_FLAGS]) == 0
    return root


def test_toy_run_imports_with_the_engine_token_counts(toy_run):
    df = load_samples(toy_run / "store")
    raw = pd.read_json(toy_run / "run.jsonl", lines=True)
    assert len(df) == 24 and df["thinking_tokens"].notna().all()
    assert sorted(df["num_tokens"]) == sorted(raw["engine_tokens"])   # re-counted from text = the generator's count
    assert 0 < df["correct"].mean() < 1 and df["num_tokens"].nunique() > 4


def test_trl_grpo_trains_two_steps_with_the_exported_reward(toy_run, tmp_path):
    "GRPOTrainer with the toy model as the policy, on the export of its own earlier run, with the exported reward."
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig, GRPOTrainer
    from o1_pruner.toy import reference_path
    policy = str(reference_path())
    assert export_cli(["--format", "trl", "--store", str(toy_run / "store"), "--output_dir", str(tmp_path / "trl"),
                       "--system", "none", "--max_response_length", str(TOY_BUDGET)]) == 0
    ds = datasets.load_from_disk(str(tmp_path / "trl"))
    calls = []
    def reward(**kw):
        out = length_harmonizing_reward(**kw)
        calls.append((kw["completion_ids"], kw["lbar"], kw["abar"], out))
        return out
    reward.__name__ = "length_harmonizing_reward"
    args = GRPOConfig(output_dir=str(tmp_path / "grpo"), max_steps=2, per_device_train_batch_size=8, num_generations=4,
                      max_completion_length=TOY_BUDGET, use_cpu=True, report_to=[], logging_steps=1,
                      save_strategy="no", disable_tqdm=True, learning_rate=1e-4, temperature=1.0, seed=0)
    model = AutoModelForCausalLM.from_pretrained(policy)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = GRPOTrainer(model=model, reward_funcs=reward, args=args, train_dataset=ds,
                              processing_class=AutoTokenizer.from_pretrained(policy))
        trainer.train()
    assert trainer.state.global_step == 2 and len(calls) == 2
    logs = [h for h in trainer.state.log_history if "rewards/length_harmonizing_reward/mean" in h]
    assert len(logs) == 2 and "o1_pruner/accuracy" in logs[0]
    for h, (ids, lbar, abar, out) in zip(logs, calls):
        assert h["rewards/length_harmonizing_reward/mean"] == pytest.approx(float(np.mean(out)), rel=1e-5, abs=1e-6)
        assert h["o1_pruner/length"] == pytest.approx(np.mean([len(i) for i in ids]))
        assert all(-2 <= r <= 4 for r in out)
    assert max(h["rewards/length_harmonizing_reward/std"] for h in logs) > 0   # a learning signal within groups
    assert any(not bool((p.detach() == before[n]).all()) for n, p in model.named_parameters())
