"""Tests of the toy overthinking task, tokenizer and reference model."""
import json
import random

import pytest

from o1_pruner import toy
from o1_pruner.toy import (EOS, PAD, SPEED_STYLES, THINK_TOKENS, build_reference, build_tokenizer, check_outcomes,
                           difficulty, extract_toy_answer, generate_batch, generator_samples, length_statistics,
                           load_reference, make_problems, make_trace, parse_problem, problem_split, reference_path,
                           sft_example, toy_config, toy_messages, trace_tokens)


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
    n_bad = n_flips = n_fixed = 0
    for p in make_problems(400, seed=7)["problem"]:
        t = make_trace(p, rng)
        assert t.text.startswith("<think>\n") and "\n</think>\nThe answer is \\boxed{" in t.text
        assert extract_toy_answer(t.text) == str(t.answer)
        assert t.text.count("Wait") == t.n_checks and t.text.count("Fix.") == t.n_fixed + t.n_flips
        assert t.correct == (t.n_mistakes + t.n_flips == t.n_fixed) == (t.answer == sum(parse_problem(p)))
        o = check_outcomes(t.text)
        assert (o["checks"], o["catches"], o["flips"]) == (t.n_checks, t.n_fixed, t.n_flips)
        n_bad, n_flips, n_fixed = n_bad + (not t.correct), n_flips + t.n_flips, n_fixed + t.n_fixed
        assert make_trace(p, rng, temperature=0).correct  # greedily neither mistakes nor second-guesses
        assert make_trace(p, rng, p_mistake=0.0, p_flip=0.0, p_flip_again=0.0).correct
    assert 20 < n_bad < 120 and n_flips > 20 and n_fixed > 20
    assert make_trace("31+45", seed := 5).text == make_trace("31+45", seed).text


def test_habit_count_distribution_is_the_same_for_every_problem_size():
    habit = dict(p_mistake=0.0, p_doubt=0.0)
    for terms in (["12", "34"], ["12", "34", "21"], ["12", "34", "21", "15"]):
        rng = random.Random(len(terms))
        counts = [make_trace("+".join(terms), rng, **habit).n_checks for _ in range(4000)]
        freq = [counts.count(n) / len(counts) for n in range(len(toy.CHECK_COUNTS))]
        assert all(abs(f - p) < 0.03 for f, p in zip(freq, toy.CHECK_COUNTS)), (terms, freq)


def _gen_stats(temperature, n=600, **style):
    return length_statistics(generator_samples(n, k=8, temperature=temperature, seed=1, **style))


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_generated_traces_have_the_papers_shape(temperature):
    st = _gen_stats(temperature)
    w, g = st["acc_within"], st["acc_global"]
    assert w[3] < w[0] - 0.03 and g[3] < g[0] - 0.03, (w, g)  # longer samples of a problem are less often right
    assert st["tokens_within"] == sorted(st["tokens_within"])
    checks = [v["checks"] for v in st["by_difficulty"].values()]
    assert max(checks) < 1.3 * min(checks), st["by_difficulty"]  # easy problems re-check as much as hard ones
    assert st["flips_per_trace"] > 0.03 and st["catches_per_trace"] > 0.05  # second-guessing and real catches


def test_thinking_has_value_on_hard_problems_only():
    tbl = toy.check_value_table(600, seed=2)
    acc, tokens = tbl["accuracy"], tbl["tokens"]
    assert acc.loc["easy", "none"] == 1.0 and acc.loc["easy", "twice every step"] < 0.9
    assert acc.loc["hard-4", "hard steps"] > acc.loc["hard-4", "none"] + 0.1  # pruning every re-check is wrong
    assert acc.loc["all", "in doubt"] >= acc.loc["all", "habit"] - 0.02  # the efficient thinker
    assert tokens.loc["all", "in doubt"] < 0.7 * tokens.loc["all", "habit"]
    easy = [p for p in make_problems(300, seed=2, max_terms=2)["problem"] if difficulty(p) == "easy"]
    assert all(make_trace(p, i, n_checks=0).correct for i, p in enumerate(easy))


def test_fast_style_rechecks_less_and_is_less_careful():
    rng = random.Random(3)
    probs = make_problems(300, seed=3)["problem"]
    normal = [make_trace(p, rng) for p in probs]
    fast = [make_trace(p, rng, **SPEED_STYLES["fast"]) for p in probs]
    mean = lambda ts, f: sum(map(f, ts)) / len(ts)
    assert mean(fast, lambda t: t.n_checks) < 0.7 * mean(normal, lambda t: t.n_checks)
    assert mean(fast, lambda t: t.n_mistakes) > mean(normal, lambda t: t.n_mistakes)
    assert mean(fast, lambda t: trace_tokens(t.text)) < mean(normal, lambda t: trace_tokens(t.text))


def test_speed_prompt_is_the_papers_suffix():
    from o1_pruner.data import SPEED_SUFFIXES, build_messages
    demo_prompt = dict(system=None, user_template="{problem}{speed}")  # the demo's toy prompt
    assert toy_messages("12+34", "fast") == build_messages("12+34", speed="fast", **demo_prompt)
    assert toy_messages("12+34", "fast")[0]["content"] == "12+34" + SPEED_SUFFIXES["fast"]
    with pytest.raises(ValueError, match="only the speed instructions"):
        toy_messages("12+34", "very_fast")
    tok = build_tokenizer()
    ids, labels = sft_example(tok, "12+34", "<think>\n12+34=46\n</think>\nThe answer is \\boxed{46}.", speed="fast")
    n_prompt = sum(1 for x in labels if x == -100)
    assert SPEED_SUFFIXES["fast"] in tok.decode(ids[:n_prompt])
    assert SPEED_SUFFIXES["fast"] not in tok.decode(labels[n_prompt:])


def test_trace_tokens_matches_tokenizer():
    tok = build_tokenizer()
    for i, p in enumerate(make_problems(30, seed=4)["problem"]):
        text = make_trace(p, i).text
        assert trace_tokens(text) == len(tok(text + EOS, add_special_tokens=False).input_ids)


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
    fast = generate_batch(model, tok, probs["problem"], speed="fast")  # told to hurry: fewer re-checks, still answers
    assert sum(r["completion"].count("Wait") for r in fast) < 0.8 * sum(r["completion"].count("Wait") for r in res)
    fast_acc = sum(extract_toy_answer(r["completion"]) == g for r, g in zip(fast, probs["answer"])) / len(fast)
    assert fast_acc >= accuracy - 0.2, (fast_acc, accuracy)


def test_shipped_model_statistics_have_the_papers_shape():
    meta = json.loads((reference_path() / "toy_meta.json").read_text())
    assert not meta.get("partial") and meta["command"].startswith("o1-pruner demo --rebuild-reference")
    st = meta["statistics"]
    assert st["n"] >= 1000 and st["k"] == 8 and st["temperature"] == 0.7 and st["max_new_tokens"] == 192
    s = st["samples"]
    assert s["acc_global"][3] <= s["acc_global"][0] - 0.05   # longer samples are less often right, over all samples
    checks = [v["checks"] for v in s["by_difficulty"].values()]
    assert max(checks) < 1.5 * min(checks)
    assert 0.7 <= st["greedy"]["accuracy"] <= 0.95
    assert st["greedy_fast"]["tokens"] < st["greedy"]["tokens"]


@pytest.mark.xfail(strict=True, reason="the shipped reference does not reproduce its generator's within-problem trend "
                   "(generator -8.5 points Q1->Q4, model +0.5): a known gap, see 11_toy")
def test_shipped_model_within_problem_accuracy_falls_with_length():
    s = json.loads((reference_path() / "toy_meta.json").read_text())["statistics"]["samples"]
    assert s["acc_within"][3] <= s["acc_within"][0] - 0.02


def test_build_reference_tiny(tmp_path):
    cfg = toy_config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    out = build_reference(tmp_path / "m", steps=2, n_train=32, batch_size=8, log_every=0, config=cfg,
                          meta=dict(command="test"), p_fast=0.5)
    model, tok = load_reference(out)
    assert model.config.hidden_size == 32 and model.config.tie_word_embeddings
    meta = json.loads((out / "toy_meta.json").read_text())
    assert meta["steps"] == 2 and meta["command"] == "test" and meta["p_fast"] == 0.5
    assert (out / "model.safetensors").exists() and (out / "generation_config.json").exists()
    res = generate_batch(model, tok, ["12+34"], max_new_tokens=5)
    assert res[0]["num_tokens"] <= 5


def test_load_reference_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="rebuild-reference"):
        load_reference(tmp_path)


def test_rebuild_cli_bad_args():
    with pytest.raises(SystemExit):
        toy.rebuild_reference_cli(["--steps", "many"])
