"""Paper baselines: subset and pair construction, SFT-shortest and DPO training on a tiny model, Fast-Solving Prompt rows."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from o1_pruner import baselines as bl
from o1_pruner.stages import requested_method
from o1_pruner.data import SPEED_SUFFIXES
from o1_pruner.store import load_samples as read_store
from o1_pruner.testing import write_store

RECIPES = Path(bl.__file__).parent / "recipes"


def rec(pid, idx, n, correct, finish="stop", problem=None):
    return dict(problem_id=pid, sample_idx=idx, problem=problem if problem is not None else f"Compute {pid}.", gold="1",
                prompt="", completion=f"{pid}/{idx}:" + "y" * n, num_tokens=n, thinking_tokens=None,
                finish_reason=finish, extracted="1" if correct else "2", correct=correct, grade_reason="")


@pytest.fixture
def store(tmp_path):
    """A store on disk: ties, a problem without a correct sample, a single-sample one, truncated samples."""
    records = [
        # a: tie at 7 tokens between idx 2 and 0 (idx 0 wins), a truncated correct 3-token sample, a long wrong one
        rec("a", 2, 7, True), rec("a", 0, 7, True), rec("a", 1, 3, True, "length"), rec("a", 3, 9, True), rec("a", 4, 40, False),
        rec("b", 0, 5, False), rec("b", 1, 6, False, "length"),  # no correct sample
        rec("c", 0, 4, True),  # one sample
        rec("d", 0, 30, True), rec("d", 1, 12, True),  # two samples, both correct: the longer is the rejected
        rec("e", 0, 10, True), rec("e", 1, 10, True),  # equal lengths: no pair with min_length_gap=1
        rec("f", 0, 50, True), rec("f", 1, 20, False),  # only the longest is correct: no shorter correct sample
    ]
    return write_store(tmp_path / "store", records, {"model": "none"})


def test_shortest_correct(store):
    sel, rep = bl.shortest_correct(store, k=2)
    got = list(zip(sel.problem_id, sel.sample_idx))
    assert got == [("a", 0), ("a", 2), ("c", 0), ("d", 1), ("d", 0), ("e", 0), ("e", 1), ("f", 0)]
    assert (sel.finish_reason == "stop").all() and sel.correct.all()
    assert rep["problems_no_correct"] == 1 and rep["single_sample_problems"] == 1
    assert rep["truncated_correct_excluded"] == 1 and rep["truncated_samples"] == 2
    assert rep["problems_fewer_than_k"] == 2  # c and f
    assert rep["problems_used"] == 5 and rep["rows"] == 8 and rep["problems_in"] == 6
    sel1, _ = bl.shortest_correct(store, k=1)
    assert list(zip(sel1.problem_id, sel1.sample_idx))[:2] == [("a", 0), ("c", 0)]
    # input order does not matter (ties by sample_idx)
    df = read_store(store).sample(frac=1.0, random_state=3)
    assert list(zip(*bl.shortest_correct(df, 2)[0][["problem_id", "sample_idx"]].T.values)) == got
    with pytest.raises(ValueError, match="k must be"):
        bl.shortest_correct(store, k=0)


def test_dpo_pairs_longest(store, capsys):
    pairs, rep = bl.dpo_pairs(store)
    got = list(zip(pairs.problem_id, pairs.chosen_idx, pairs.rejected_idx))
    assert got == [("a", 0, 4), ("a", 2, 4), ("d", 1, 0)]
    assert (pairs.chosen_tokens < pairs.rejected_tokens).all()
    assert rep["single_sample_problems"] == 1 and rep["problems_no_correct"] == 1
    assert rep["problems_no_shorter_correct"] == 2  # e (equal lengths) and f (only the longest is correct)
    assert rep["rejected_correct_pairs"] == 1 and rep["pairs"] == 3 and rep["problems_used"] == 2
    assert rep["problems_fewer_than_n_chosen"] == 1  # d
    # equal lengths allowed with min_length_gap=0: e gives one pair (rejected idx 0 by the tie rule, chosen idx 1)
    p0, _ = bl.dpo_pairs(store, min_length_gap=0)
    assert ("e", 1, 0) in list(zip(p0.problem_id, p0.chosen_idx, p0.rejected_idx))
    ds = bl.dpo_dataset(store, eos_text="<E>")
    assert "dpo pairs: problems_in=6" in capsys.readouterr().out
    assert json.loads(ds.info.description)["counts"]["pairs"] == 3
    assert all(c.endswith("<E>") for c in ds["chosen"]) and all(r.endswith("<E>") for r in ds["rejected"])


def test_dpo_pairs_longest_incorrect_and_truncated_rejected(store):
    pairs, rep = bl.dpo_pairs(store, n_chosen=1, rejected="longest_incorrect")
    assert list(zip(pairs.problem_id, pairs.chosen_idx, pairs.rejected_idx)) == [("a", 0, 4)]
    assert not pairs.rejected_correct.any()
    assert rep["problems_no_rejected"] == 2  # d and e have no wrong sample
    assert rep["problems_no_shorter_correct"] == 1  # f: the only wrong sample is shorter than its correct one
    # a truncated longest sample is the rejected and keeps no end-of-turn text
    df = pd.DataFrame([rec("g", 0, 5, True), rec("g", 1, 80, True, "length")])
    ds = bl.dpo_dataset(df, eos_text="<E>", verbose=False)
    assert ds["rejected_idx"] == [1] and not ds["rejected"][0].endswith("<E>") and ds["chosen"][0].endswith("<E>")
    with pytest.raises(ValueError, match="rejected must be"):
        bl.dpo_pairs(store, rejected="shortest")


def test_missing_problem_text_is_a_clear_error():
    df = pd.DataFrame([rec("x", 0, 3, True, problem=""), rec("x", 1, 9, False, problem="")])
    with pytest.raises(ValueError, match="no `problem` text.*problems \\['x'\\]"):
        bl.sft_dataset(df, verbose=False)


def test_tokenisation_boundaries(char_tokenizer, store):
    tok = char_tokenizer
    ds = bl.dpo_dataset(store, eos_text=tok.eos_token, verbose=False)
    t = bl.tokenize_dpo(ds, tok)
    from o1_pruner.tokens import tokenize_example
    for row, src in zip(t, ds):
        ref = tokenize_example(tok, src["messages"], src["chosen"])
        assert row["prompt_ids"] + row["chosen_ids"] == ref["input_ids"]
        assert tok.decode(row["prompt_ids"]).endswith("<|im_start|>assistant\n")
        assert tok.decode(row["chosen_ids"]) == src["chosen"] and tok.decode(row["rejected_ids"]) == src["rejected"]
    n_prompt = len(t[0]["prompt_ids"])
    sft = bl.sft_dataset(store, eos_text=tok.eos_token, verbose=False)
    ts = bl.tokenize_sft(sft, tok, cutoff_len=n_prompt + 4)
    assert all(len(r["input_ids"]) <= n_prompt + 4 for r in ts)
    from o1_pruner.tokens import BatchCollator
    lab = [x for x in BatchCollator(tok.pad_token_id, labels=True)([ts[0]])["labels"][0].tolist() if x != -100]
    assert tok.decode(lab) == sft[0]["completion"][:4]
    with pytest.raises(ValueError, match="prompts fill cutoff_len"):
        bl.tokenize_sft(sft, tok, cutoff_len=5)


def _args(out, steps, **kw):
    return dict(output_dir=str(out), use_cpu=True, max_steps=steps, learning_rate=3e-3, per_device_train_batch_size=8,
                logging_steps=1, report_to="none", save_strategy="no", disable_tqdm=True, seed=0, **kw)


def _losses(trainer):
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


def test_sft_shortest_trains_and_saves(tmp_path, store, tiny_model_dir):
    from transformers import AutoModelForCausalLM
    out = tmp_path / "sft"
    tr = bl.train_baseline("sft-shortest", store, str(tiny_model_dir), out, _args(out, 6))
    losses = _losses(tr)
    assert len(losses) == 6 and losses[-1] < losses[0]  # one repeated batch (8 rows): the NLL goes down
    info = json.loads((out / "o1_pruner_train.json").read_text())
    assert info["method"] == "sft-shortest" and info["counts"]["rows"] == 8 and info["counts"]["problems_no_correct"] == 1
    AutoModelForCausalLM.from_pretrained(out)


def test_sft_freeze_keeps_frozen_layers(tmp_path, store, tiny_model_dir):
    import torch
    from transformers import AutoModelForCausalLM
    from o1_pruner.models import ModelArguments
    out = tmp_path / "sft-freeze"
    ma = ModelArguments(model_name_or_path=str(tiny_model_dir), finetuning_type="freeze", freeze_trainable_layers=1)
    bl.train_baseline("sft-shortest", store, ma, out, _args(out, 2))
    before, after = AutoModelForCausalLM.from_pretrained(tiny_model_dir), AutoModelForCausalLM.from_pretrained(out)
    l0b, l0a = before.model.layers[0], after.model.layers[0]
    assert all(torch.equal(p, q) for p, q in zip(l0b.parameters(), l0a.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(before.model.layers[1].parameters(), after.model.layers[1].parameters()))


def test_dpo_trains_and_saves(tmp_path, store, tiny_model_dir):
    from transformers import AutoModelForCausalLM
    out = tmp_path / "dpo"
    tr = bl.train_baseline("dpo", store, str(tiny_model_dir), out, _args(out, 4))
    hist = [h for h in tr.state.log_history if "loss" in h]
    assert hist[0]["loss"] == pytest.approx(0.6931, abs=1e-3)  # policy == reference at step 1
    assert hist[-1]["loss"] < hist[0]["loss"]
    assert hist[-1]["rewards/margins"] > hist[0]["rewards/margins"]
    info = json.loads((out / "o1_pruner_train.json").read_text())
    assert info["counts"]["pairs"] == 3 and info["baseline_args"]["rejected"] == "longest"
    AutoModelForCausalLM.from_pretrained(out)


def test_dpo_lora(tmp_path, store, tiny_model_dir):
    from o1_pruner.models import ModelArguments
    out = tmp_path / "dpo-lora"
    ma = ModelArguments(model_name_or_path=str(tiny_model_dir), finetuning_type="lora", lora_r=4, lora_alpha=8,
                        lora_target_modules="q_proj,v_proj")
    tr = bl.train_baseline("dpo", store, ma, out, _args(out, 2), rejected="longest_incorrect", n_chosen=1)
    assert (out / "adapter_config.json").is_file()
    assert json.loads((out / "o1_pruner_train.json").read_text())["counts"]["pairs"] == 1
    assert _losses(tr)[0] == pytest.approx(0.6931, abs=1e-3)


def test_cli_and_recipes(tmp_path, store, tiny_model_dir, capsys):
    from o1_pruner.config import _fields
    from o1_pruner.models import ModelArguments, TrainingConfig
    known = _fields([ModelArguments, bl.BaselineArguments, TrainingConfig])
    names = sorted(p.stem for p in RECIPES.glob("*.yaml") if p.stem.endswith(("sft-shortest", "dpo")))
    assert {"tiny-cpu-sft-shortest", "tiny-cpu-dpo", "marco-o1-dpo", "qwq-32b-sft-shortest"} <= set(names)
    for n in names:
        r = yaml.safe_load((RECIPES / f"{n}.yaml").read_text())
        assert set(r) <= known, (n, set(r) - known)
        assert r["method"] in bl.BASELINE_TRAIN_METHODS
        bl.BaselineArguments(**{k: v for k, v in r.items() if k in {f.name for f in dataclasses.fields(bl.BaselineArguments)}})
    recipe = str(RECIPES / "tiny-cpu-sft-shortest.yaml")
    assert requested_method(["--recipe", recipe]) == "sft-shortest"
    assert requested_method(["--recipe", recipe, "--method", "dpo"]) == "dpo"
    out = tmp_path / "cli-sft"
    rc = bl.baseline_cli(["--recipe", recipe, "--model_name_or_path", str(tiny_model_dir), "--dataset_dir", str(store),
                          "--output_dir", str(out), "--max_steps", "1"])
    assert rc == 0 and (out / "model.safetensors").is_file()
    from o1_pruner.config import ConfigError
    with pytest.raises(ConfigError, match="store_dir"):
        bl.baseline_cli(["--recipe", recipe, "--model_name_or_path", str(tiny_model_dir), "--output_dir", str(out)])
    with pytest.raises(ConfigError, match="method must be one of"):
        bl.baseline_cli(["--recipe", recipe, "--method", "ppo", "--store_dir", str(store), "--output_dir", str(out)])


def test_fast_prompt_row(tmp_path, tiny_model_dir):
    pytest.importorskip("o1_pruner.sampling", reason="generation needs stage 1 (o1_pruner.sampling)")
    run = tmp_path / "run"
    res = bl.fast_prompt_eval(str(tiny_model_dir), ["gsm8k-test"], speeds=("fast", "very_fast"), limit=2, max_tokens=4,
                              batch_size=2, output_dir=str(run))
    assert res["models"] == ["base", "fast-prompt", "very-fast-prompt"]
    prompts = {m: read_store(run / "stores" / m / "gsm8k-test" / "greedy")["prompt"].tolist()
               for m in res["models"]}
    assert all(SPEED_SUFFIXES["fast"] in p for p in prompts["fast-prompt"])
    assert all(SPEED_SUFFIXES["very_fast"] in p for p in prompts["very-fast-prompt"])
    assert not any(SPEED_SUFFIXES["fast"] in p or SPEED_SUFFIXES["very_fast"] in p for p in prompts["base"])
    assert "fast-prompt" in (run / "table.md").read_text()
    run_cfg = json.loads((run / "run.json").read_text())["config"]
    assert run_cfg["model_speeds"] == ["fast-prompt=fast", "very-fast-prompt=very_fast"]
    with pytest.raises(ValueError, match="not model labels"):
        from o1_pruner.evaluate import evaluate
        evaluate({"base": str(tiny_model_dir)}, ["gsm8k-test"], model_speeds=["other=fast"], limit=1,
                 output_dir=str(tmp_path / "r2"))
