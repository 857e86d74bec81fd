"""Tests of the toy overthinking task, tokenizer and reference model."""
import json
import random

import pytest

from o1_pruner import toy
from o1_pruner.toy import (EOS, PAD, THINK_TOKENS, build_reference, build_tokenizer, difficulty, extract_toy_answer,
                           generate_batch, load_reference, make_problems, make_trace, parse_problem, problem_split,
                           reference_path, sft_example, toy_config)


def test_make_problems_deterministic_and_schema():
    a, b = make_problems(40, seed=3), make_problems(40, seed=3)
    assert a.to_list() == b.to_list()
    assert make_problems(40, seed=4)["problem"] != a["problem"]
    assert set(a.column_names) >= {"id", "problem", "answer", "source", "level"}
    for r in a:
        terms = parse_problem(r["problem"])
        assert r["answer"] == str(sum(terms)) and r["level"] == len(terms) and r["source"] == "toy"
        assert all(10 <= t <= 99 for t in terms) and 2 <= len(terms) <= 4
    assert len(set(a["id"])) == len(a) and len(set(a["problem"])) == len(a)


def test_splits_disjoint():
    sets = {s: set(make_problems(500, seed=0, split=s)["problem"]) for s in ["train", "validation", "test"]}
    more_train = set(make_problems(500, seed=1, split="train")["problem"])
    assert not (sets["train"] | more_train) & sets["test"]
    assert not (sets["train"] | more_train) & sets["validation"]
    assert not sets["validation"] & sets["test"]
    assert all(problem_split(p) == s for s, ps in sets.items() for p in ps)
    ids = [set(make_problems(20, seed=0, split=s)["id"]) for s in sets]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2])


def test_make_problems_bad_args():
    with pytest.raises(ValueError, match="split"):
        make_problems(3, split="dev")
    with pytest.raises(ValueError, match="too many"):
        make_problems(10_000, min_terms=2, max_terms=2, split="test")
    with pytest.raises(ValueError, match="min_terms"):
        make_problems(3, min_terms=1)


def test_trace_correct_unless_uncorrected_mistake():
    rng = random.Random(0)
    n_bad = 0
    for i, p in enumerate(make_problems(400, seed=7)["problem"]):
        t = make_trace(p, rng)
        assert t.text.startswith("<think>\n") and "\n</think>\nThe answer is \\boxed{" in t.text
        assert extract_toy_answer(t.text) == str(t.answer)
        assert t.text.count("Wait") == t.n_checks and t.text.count("Fix.") == t.n_fixed
        assert t.correct == (t.n_mistakes == t.n_fixed) == (t.answer == sum(parse_problem(p)))
        n_bad += not t.correct
        assert make_trace(p, rng, n_checks=1).correct  # a re-check after every step fixes every mistake
        assert make_trace(p, rng, p_mistake=0.0).correct
    assert 0 < n_bad < 100  # uncorrected mistakes do happen, not too often
    assert make_trace("31+45", seed := 5).text == make_trace("31+45", seed).text


def test_checks_matter_only_on_hard_problems():
    easy = [p for p in make_problems(300, seed=2, max_terms=2)["problem"] if difficulty(p) == "easy"]
    hard = [p for p in make_problems(300, seed=2, min_terms=4)["problem"]]
    assert all(make_trace(p, i, n_checks=0).correct for i, p in enumerate(easy))
    acc = sum(make_trace(p, i, n_checks=0).correct for i, p in enumerate(hard)) / len(hard)
    assert acc < 0.75


def test_tokenizer_round_trip_and_specials(tmp_path):
    tok = build_tokenizer()
    text = make_trace("85+66+23+91", 1).text + EOS
    ids = tok(text).input_ids
    assert tok.decode(ids) == text
    assert len(ids) == len(text) - sum(len(s) - 1 for s in THINK_TOKENS) - (len(EOS) - 1)  # one token per char
    for s in [PAD, "<|im_start|>", EOS, *THINK_TOKENS]:
        assert len(tok(s).input_ids) == 1
    assert "<think>" in tok.decode(ids, skip_special_tokens=True) and EOS not in tok.decode(ids, skip_special_tokens=True)
    tok.save_pretrained(tmp_path)
    from transformers import AutoTokenizer
    t2 = AutoTokenizer.from_pretrained(tmp_path)
    assert t2(text).input_ids == ids and t2.eos_token == EOS and t2.pad_token == PAD
    # next to a qwen2 config.json, AutoTokenizer rebuilds a byte-level Qwen2 tokenizer: it must agree too
    toy_config().save_pretrained(tmp_path)
    t3 = AutoTokenizer.from_pretrained(tmp_path)
    assert t3(text).input_ids == ids and t3.decode(ids) == text
    prompt = "<|im_start|>user\n12+34<|im_end|>\n<|im_start|>assistant\n"
    assert t3.apply_chat_template([{"role": "user", "content": "12+34"}], tokenize=False, add_generation_prompt=True) == prompt
    assert t3(prompt).input_ids == tok(prompt).input_ids


def test_chat_template():
    tok = build_tokenizer()
    msgs = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "47+18+93"}]
    assert tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) == \
        "<|im_start|>user\n47+18+93<|im_end|>\n<|im_start|>assistant\n"
    full = msgs + [{"role": "assistant", "content": "<think>\nx\n</think>\nThe answer is \\boxed{158}."}]
    assert tok.apply_chat_template(full, tokenize=False).endswith("<|im_start|>assistant\n<think>\nx\n</think>\nThe answer is \\boxed{158}.<|im_end|>\n")


def test_sft_example_masks_prompt():
    tok = build_tokenizer()
    ids, labels = sft_example(tok, "12+34", "<think>\n12+34=46\n</think>\nThe answer is \\boxed{46}.")
    n_prompt = sum(1 for x in labels if x == -100)
    assert tok.decode(ids[:n_prompt]).endswith("<|im_start|>assistant\n")
    assert tok.decode(labels[n_prompt:]) == "<think>\n12+34=46\n</think>\nThe answer is \\boxed{46}.<|im_end|>"
    assert labels[-1] == tok.eos_token_id


def test_shipped_model_loads_and_answers():
    from transformers import AutoModelForCausalLM, AutoTokenizer
    path = reference_path()
    assert (path / "model.safetensors").exists() and (path / "tokenizer.json").exists()
    assert sum(f.stat().st_size for f in path.iterdir()) < 8e6
    model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    assert model.generation_config.eos_token_id == tok.convert_tokens_to_ids(EOS)
    assert model.generation_config.pad_token_id == tok.convert_tokens_to_ids(PAD)
    res = generate_batch(model.eval(), tok, ["12+34", "21+30", "40+15", "33+22+11"])
    assert all(r["completion"].startswith("<think>\n") and r["finish_reason"] == "stop" for r in res)
    assert all(extract_toy_answer(r["completion"]) is not None for r in res)


def test_shipped_model_solves_most_problems():
    model, tok = load_reference()
    probs = make_problems(60, seed=3, split="validation")
    res = generate_batch(model, tok, probs["problem"])
    answers = [extract_toy_answer(r["completion"]) for r in res]
    accuracy = sum(a == g for a, g in zip(answers, probs["answer"])) / len(answers)
    assert accuracy >= 0.65, accuracy
    assert sum(r["completion"].count("Wait") for r in res) / len(res) >= 0.5  # it still re-checks (overthinks)


def test_build_reference_tiny(tmp_path):
    cfg = toy_config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    out = build_reference(tmp_path / "m", steps=2, n_train=32, batch_size=8, log_every=0, config=cfg)
    model, tok = load_reference(out)
    assert model.config.hidden_size == 32 and model.config.tie_word_embeddings
    assert json.loads((out / "toy_meta.json").read_text())["steps"] == 2
    assert (out / "model.safetensors").exists() and (out / "generation_config.json").exists()
    res = generate_batch(model, tok, ["12+34"], max_new_tokens=5)
    assert res[0]["num_tokens"] <= 5


def test_load_reference_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="rebuild-reference"):
        load_reference(tmp_path)


def test_rebuild_cli_bad_args():
    with pytest.raises(SystemExit):
        toy.rebuild_reference_cli(["--steps", "many"])
