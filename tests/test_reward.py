"""Stage 3: rewards, rewarded dataset, tokenization, chunked log-probs, reference scoring, build-dataset CLI."""
from __future__ import annotations

import json
import warnings

import datasets
import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings, strategies as st, example

from o1_pruner.reward import (BuildDatasetConfig, PromptTooLong, RewardConfig, build_dataset_cli,
                              build_rewarded_dataset, length_harmonizing_rewards, normalize_rewards,
                              save_rewarded_dataset, score_reference_logprobs, sequence_logprobs, store_model,
                              tokenize_example)
from conftest import make_tiny_model
from o1_pruner.store import SampleStore
from o1_pruner.testing import write_store

EOS = "<|im_end|>"


def rec(pid, i, n, correct, finish="stop", completion=None, thinking=None):
    return dict(problem_id=pid, sample_idx=i, problem=f"What is {pid}?", gold="4", prompt="",
                completion=completion if completion is not None else f"sol {pid}{i}", num_tokens=n,
                thinking_tokens=thinking, finish_reason=finish, extracted="4" if correct else "5",
                correct=correct, grade_reason="")


def frame(spec):
    return pd.DataFrame([rec(pid, i, n, c, f) for pid, rows in spec.items() for i, (n, c, f) in enumerate(rows)])


# ---------------------------------------------------------------- the reward formula
def test_rewards_hand_computed():
    # Lbar = 250, Abar = 0.75
    assert length_harmonizing_rewards([100, 200, 300, 400], [1, 1, 1, 0], lam=2) == pytest.approx([2.0, 0.75, 1 / 3, -1.875])
    # lam = 5 (QwQ), Lbar = 150, Abar = 0.5
    assert length_harmonizing_rewards([100, 200], [True, False], lam=5) == pytest.approx([0.5 + 2.5, -0.25 - 2.5])
    assert length_harmonizing_rewards([7], [1], lam=3) == [0.0]  # one sample: it is its own baseline


def test_reward_errors():
    with pytest.raises(ValueError, match="positive"):
        length_harmonizing_rewards([10, 0], [1, 0], 2)
    with pytest.raises(ValueError, match="same number"):
        length_harmonizing_rewards([10, 20], [1], 2)
    with pytest.raises(ValueError, match="at least 1"):
        length_harmonizing_rewards([], [], 2)


lengths_st = st.lists(st.integers(1, 5000), min_size=2, max_size=16)


@settings(max_examples=60, deadline=None)
@given(lengths_st, st.data(), st.floats(0, 10))
def test_shorter_correct_beats_longer_correct(lengths, data, lam):
    correct = data.draw(st.lists(st.booleans(), min_size=len(lengths), max_size=len(lengths)))
    r = length_harmonizing_rewards(lengths, correct, lam)
    for i in range(len(lengths)):
        for j in range(len(lengths)):
            if correct[i] and correct[j] and lengths[i] < lengths[j]:
                assert r[i] > r[j]


@settings(max_examples=60, deadline=None)
@given(lengths_st, st.data())
def test_lam_zero_ignores_correctness(lengths, data):
    c1 = data.draw(st.lists(st.booleans(), min_size=len(lengths), max_size=len(lengths)))
    c2 = data.draw(st.lists(st.booleans(), min_size=len(lengths), max_size=len(lengths)))
    assert length_harmonizing_rewards(lengths, c1, 0) == pytest.approx(length_harmonizing_rewards(lengths, c2, 0))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-50, 50, allow_nan=False), min_size=2, max_size=40))
@example([0.0, 1.7362815306487624e-09])  # spread between the zero-variance threshold and 1e-9 (found by CI)
@example([3.0, 3.0, 3.0])
def test_zscore_mean0_std1(r):
    a, nz = normalize_rewards(r)
    sd = np.std(r)
    if sd > 1e-6:
        assert nz == 0 and abs(a.mean()) < 1e-9 and abs(a.std() - 1) < 1e-6
    elif sd < 1e-12:  # the implementation's zero-variance threshold
        assert nz == 1 and (a == 0).all()
    else:  # tiny but nonzero spread: normalised, with rounding error relative to the spread
        assert nz == 0 and np.isfinite(a).all()


@settings(max_examples=25, deadline=None)
@given(st.dictionaries(st.sampled_from("abcdef"), st.lists(st.tuples(st.integers(1, 3000), st.booleans()),
                                                          min_size=2, max_size=8), min_size=1, max_size=6),
       st.floats(0, 6), st.sampled_from([None, 1, 2, 3]))
def test_dataset_clip_and_zscore_properties(spec, lam, m):
    df = frame({k: [(n, c, "stop") for n, c in v] for k, v in spec.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        none = build_rewarded_dataset(df, RewardConfig(lam=lam, samples_per_problem=m, normalize="none", system=None,
                                                       eos_text=EOS), verbose=False)
        z = build_rewarded_dataset(df, RewardConfig(lam=lam, samples_per_problem=m, system=None, eos_text=EOS), verbose=False)
    adv = np.array(none["advantage"])
    assert (adv >= -2).all() and (adv <= 4).all()
    assert np.allclose(adv, np.clip(none["reward"], -2, 4))
    a = np.array(z["advantage"])
    if adv.std() > 1e-9:
        assert abs(a.mean()) < 1e-9 and abs(a.std() - 1) < 1e-6
    if m:
        assert pd.Series(z["problem_id"]).value_counts().max() <= m


# ---------------------------------------------------------------- the rewarded dataset
SPEC = {"a": [(100, True, "stop"), (200, True, "stop"), (300, True, "stop"), (400, False, "stop")],
        "b": [(500, False, "stop"), (800, False, "stop"), (900, True, "stop"), (1000, False, "length")]}


def test_dataset_all_samples_no_clip():
    ds = build_rewarded_dataset(frame(SPEC), RewardConfig(samples_per_problem=0, clip=False, normalize="none",
                                                          system=None, eos_text=EOS), verbose=False)
    d = ds.to_pandas()
    assert len(d) == 8 and list(d.columns[:4]) == ["problem_id", "sample_idx", "messages", "completion"]
    assert d.reward[:4].tolist() == pytest.approx([2.0, 0.75, 1 / 3, -1.875])
    b = d[d.problem_id == "b"]  # Lbar 800, Abar 0.25 (truncated sample counts as wrong)
    assert b.lbar.iloc[0] == 800 and b.abar.iloc[0] == 0.25
    assert b.reward.tolist() == pytest.approx([800 / 500 - 1 - 0.5, -0.5, 800 / 900 - 1 + 1.5, 800 / 1000 - 1 - 0.5])
    assert d.advantage.tolist() == d.reward.tolist()
    assert d.completion[0] == "sol a0" + EOS and d.completion[7] == "sol b3"  # truncated: no end-of-turn
    assert list(d.messages[0]) == [{"role": "user", "content": "What is a?"}]


def test_dataset_defaults_reference_order():
    ds = build_rewarded_dataset(frame(SPEC), RewardConfig(system=None, eos_text=EOS), verbose=False)
    assert len(ds) == 4
    # Lbar/Abar come from all K even though only m=2 are kept; reward stored raw (unclipped)
    for r in ds:
        assert r["lbar"] == (250 if r["problem_id"] == "a" else 800)
    raw = np.array(ds["reward"])
    clipped = np.clip(raw, -2, 4)
    assert np.allclose(ds["advantage"], (clipped - clipped.mean()) / clipped.std())
    again = build_rewarded_dataset(frame(SPEC).sample(frac=1, random_state=1), RewardConfig(system=None, eos_text=EOS),
                                   verbose=False)
    assert again["sample_idx"] == ds["sample_idx"]  # same seed -> same choice, whatever the input order
    other = [build_rewarded_dataset(frame(SPEC), RewardConfig(seed=s, system=None, eos_text=EOS), verbose=False)["sample_idx"]
             for s in range(6)]
    assert len({tuple(o) for o in other}) > 1
    rep = json.loads(ds.info.description)
    assert rep["counts"]["truncated"] == 1 and rep["config"]["lam"] == 2.0


def test_system_prompt_default_is_training_prompt():
    from o1_pruner.data import TRAIN_SYSTEM_PROMPT
    ds = build_rewarded_dataset(frame(SPEC), RewardConfig(eos_text=EOS), verbose=False)
    assert ds[0]["messages"] == [{"role": "system", "content": TRAIN_SYSTEM_PROMPT}, {"role": "user", "content": "What is a?"}]


def test_eos_from_tokenizer_not_doubled(char_tokenizer):
    df = pd.DataFrame([rec("p", 0, 5, True, completion="done" + EOS), rec("p", 1, 9, False, completion="more")])
    ds = build_rewarded_dataset(df, RewardConfig(samples_per_problem=None, system=None), tokenizer=char_tokenizer, verbose=False)
    assert ds["completion"] == ["done" + EOS, "more" + EOS]
    with pytest.raises(ValueError, match="end-of-turn"):
        build_rewarded_dataset(df, RewardConfig(system=None), verbose=False)


def test_truncated_drop_keeps_baseline():
    ds = build_rewarded_dataset(frame(SPEC), RewardConfig(samples_per_problem=None, truncated="drop", system=None,
                                                          eos_text=EOS), verbose=False)
    assert len(ds) == 7 and "length" not in ds["finish_reason"]
    assert set(ds.filter(lambda r: r["problem_id"] == "b")["lbar"]) == {800}
    assert json.loads(ds.info.description)["counts"]["truncated_dropped"] == 1


def test_edge_cases_counted():
    df = frame({"a": [(100, True, "stop"), (0, True, "stop"), (300, False, "stop")],
                "solo": [(50, True, "stop")],
                "same": [(10, True, "stop"), (10, True, "stop")]})
    with pytest.warns(UserWarning, match="zero or missing length"):
        ds = build_rewarded_dataset(df, RewardConfig(samples_per_problem=None, system=None, eos_text=EOS), verbose=False)
    c = json.loads(ds.info.description)["counts"]
    assert c["zero_length_skipped"] == 1 and c["small_problems_skipped"] == 1 and c["rows"] == 4
    assert sorted(set(ds["problem_id"])) == ["a", "same"]
    kept = build_rewarded_dataset(df[df.num_tokens > 0], RewardConfig(samples_per_problem=None, keep_small_problems=True,
                                                                      system=None, eos_text=EOS), verbose=False)
    assert "solo" in kept["problem_id"]
    # all rewards equal -> advantage 0 with a warning, no division by zero
    with pytest.warns(UserWarning, match="equal"):
        z = build_rewarded_dataset(df[df.problem_id == "same"], RewardConfig(system=None, eos_text=EOS), verbose=False)
    assert z["advantage"] == [0.0, 0.0]
    with pytest.warns(UserWarning, match="equal rewards"):
        pp = build_rewarded_dataset(df[df.num_tokens > 0], RewardConfig(samples_per_problem=None, normalize="per_problem",
                                                                        system=None, eos_text=EOS), verbose=False)
    adv = pd.Series(pp["advantage"], index=pp["problem_id"])
    assert adv["same"].tolist() == [0, 0] and adv["a"].tolist() == pytest.approx([1, -1])


def test_missing_problem_text_is_a_clear_error():
    df = frame(SPEC)
    df.loc[2, "problem"] = None
    with pytest.raises(ValueError, match="no `problem` text.*'sample_idx': 2"):
        build_rewarded_dataset(df, RewardConfig(eos_text=EOS), verbose=False)


def test_thinking_tokens_fallback():
    df = pd.DataFrame([rec("p", 0, 100, True, thinking=40), rec("p", 1, 200, True, thinking=None)])
    with pytest.warns(UserWarning, match="no think block"):
        ds = build_rewarded_dataset(df, RewardConfig(length_field="thinking_tokens", samples_per_problem=None,
                                                     normalize="none", clip=False, system=None, eos_text=EOS), verbose=False)
    assert ds["length"] == [40, 200]
    assert ds["reward"] == pytest.approx([120 / 40 - 1, 120 / 200 - 1])
    assert json.loads(ds.info.description)["counts"]["thinking_tokens_fallback"] == 1


def test_config_validation():
    with pytest.raises(ValueError, match="normalize"):
        RewardConfig(normalize="minmax")
    with pytest.raises(ValueError, match="clip_low"):
        RewardConfig(clip_low=3, clip_high=1)
    assert RewardConfig(samples_per_problem=0).samples_per_problem is None
    assert RewardConfig(system="none").system is None


def test_save_manifest(tmp_path):
    store = write_store(tmp_path / "store", frame(SPEC).to_dict("records"), {"model": "m"})
    ds = build_rewarded_dataset(store, RewardConfig(eos_text=EOS), verbose=False)
    save_rewarded_dataset(ds, tmp_path / "out", source=store)
    m = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert m["source"] == str(store) and m["source_fingerprint"]["records"] == 8
    assert m["counts"]["rows"] == 4 and m["stats"]["rows"] == 4 and "advantage" in m["stats"]
    assert len(datasets.load_from_disk(str(tmp_path / "out"))) == 4
    assert store_model(store) == "m"


# ---------------------------------------------------------------- tokenization + log-probs
MSG = [{"role": "system", "content": "sys"}, {"role": "user", "content": "1+1?"}]


def test_tokenize_example_mask_and_cutoff(char_tokenizer):
    tok = char_tokenizer
    prompt = tok.apply_chat_template(MSG, tokenize=False, add_generation_prompt=True)
    n_p = len(tok(prompt, add_special_tokens=False)["input_ids"])
    ex = tokenize_example(tok, MSG, "two" + EOS)
    assert len(ex["input_ids"]) == len(ex["response_mask"]) == n_p + 4
    assert ex["response_mask"] == [0] * n_p + [1] * 4
    assert ex["input_ids"][-1] == tok.eos_token_id  # end-of-turn is one special token, inside the mask
    assert tok.decode(ex["input_ids"][:n_p]) == prompt
    cut = tokenize_example(tok, MSG, "two" + EOS, cutoff=n_p + 2)
    assert cut["input_ids"] == ex["input_ids"][: n_p + 2] and sum(cut["response_mask"]) == 2
    with pytest.raises(PromptTooLong, match="cutoff"):
        tokenize_example(tok, MSG, "two", cutoff=n_p)


@pytest.fixture(scope="module")
def tiny64(char_tokenizer):
    return make_tiny_model(char_tokenizer, seed=1).double().eval()


def direct_logps(model, ex):
    ids = torch.tensor([ex["input_ids"]])
    logits = model(input_ids=ids).logits[0, :-1].double()
    lp = torch.log_softmax(logits, -1).gather(-1, ids[0, 1:, None])[:, 0]
    m = torch.tensor(ex["response_mask"][1:]).bool()
    return lp[m]


def batch(exs, pad_id, side="right"):
    T = max(len(e["input_ids"]) for e in exs)
    def pad(x, v):
        return x + [v] * (T - len(x)) if side == "right" else [v] * (T - len(x)) + x
    return (torch.tensor([pad(e["input_ids"], pad_id) for e in exs]),
            torch.tensor([pad([1] * len(e["input_ids"]), 0) for e in exs]),
            torch.tensor([pad(e["response_mask"], 0) for e in exs]))


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("chunk", [1, 3, 7, 4096])
def test_sequence_logprobs_equals_float64(tiny64, char_tokenizer, side, chunk):
    tok = char_tokenizer
    exs = [tokenize_example(tok, MSG, c) for c in ("2" + EOS, "it is two, wait, yes 2" + EOS, "long " * 6)]
    ids, att, rm = batch(exs, tok.pad_token_id, side)
    with torch.no_grad():
        mean, tot, n = sequence_logprobs(tiny64, ids, att, rm, chunk_size=chunk)
    for i, e in enumerate(exs):
        lp = direct_logps(tiny64, e)
        assert n[i].item() == len(lp)
        assert tot[i].item() == pytest.approx(lp.sum().item(), abs=1e-9)
        assert mean[i].item() == pytest.approx(lp.mean().item(), abs=1e-9)


def test_sequence_logprobs_gradients_match(char_tokenizer):
    tok = char_tokenizer
    exs = [tokenize_example(tok, MSG, c) for c in ("22" + EOS, "x = 2 so 2" + EOS)]
    ids, att, rm = batch(exs, tok.pad_token_id, "right")
    m1 = make_tiny_model(tok, seed=3).double()
    m2 = make_tiny_model(tok, seed=3).double()
    mean, _, _ = sequence_logprobs(m1, ids, att, rm, chunk_size=4)  # checkpointed chunks
    (mean * torch.tensor([1.0, -2.0], dtype=mean.dtype)).sum().backward()
    ref = torch.stack([direct_logps(m2, e).mean() for e in exs])
    (ref * torch.tensor([1.0, -2.0], dtype=ref.dtype)).sum().backward()
    for (name, p1), (_, p2) in zip(m1.named_parameters(), m2.named_parameters()):
        assert p1.grad is not None, name
        assert torch.allclose(p1.grad, p2.grad, atol=1e-9), name


def test_sequence_logprobs_float32_close(char_tokenizer):
    tok = char_tokenizer
    model = make_tiny_model(tok, seed=2).eval()
    exs = [tokenize_example(tok, MSG, "abc" + EOS)]
    ids, att, rm = batch(exs, tok.pad_token_id)
    with torch.no_grad():
        mean, _, _ = sequence_logprobs(model, ids, att, rm, chunk_size=2)
        ref = direct_logps(model.double(), exs[0]).mean().item()
    assert mean.dtype == torch.float32 and mean.item() == pytest.approx(ref, abs=1e-5)


# ---------------------------------------------------------------- reference scoring + CLI
def small_ds():
    return build_rewarded_dataset(frame(SPEC), RewardConfig(samples_per_problem=None, system=None, eos_text=EOS), verbose=False)


def test_score_reference_equals_direct_and_resumes(tiny64, char_tokenizer, tmp_path, monkeypatch):
    ds = small_ds()
    cache = tmp_path / "cache"
    cutoff = 48
    scored = score_reference_logprobs(ds, tiny64, char_tokenizer, cutoff=cutoff, batch_size=3, cache_dir=cache, progress=False)
    for r in scored:
        ex = tokenize_example(char_tokenizer, r["messages"], r["completion"], cutoff)
        lp = direct_logps(tiny64, ex)
        assert r["n_response_tokens"] == len(lp) == sum(ex["response_mask"])
        assert r["ref_logp"] == pytest.approx(lp.mean().item(), abs=1e-9)
    # resume: keep half the cache (plus a torn line), count the rows scored again
    lines = (cache / "scores-000-of-001.jsonl").read_text().splitlines()
    (cache / "scores-000-of-001.jsonl").write_text("\n".join(lines[:4]) + "\n" + lines[4][:10])
    import o1_pruner.reward as rw
    calls = []
    real = rw.sequence_logprobs
    monkeypatch.setattr(rw, "sequence_logprobs", lambda m, ids, *a, **k: calls.append(len(ids)) or real(m, ids, *a, **k))
    again = score_reference_logprobs(ds, tiny64, char_tokenizer, cutoff=cutoff, batch_size=3, cache_dir=cache, progress=False)
    assert sum(calls) == 4
    assert again["ref_logp"] == pytest.approx(scored["ref_logp"], abs=1e-12)
    calls.clear()
    score_reference_logprobs(again, tiny64, char_tokenizer, cutoff=cutoff, batch_size=3, cache_dir=cache, progress=False)
    assert calls == []  # fully cached
    with pytest.raises(ValueError, match="other settings"):
        score_reference_logprobs(ds, tiny64, char_tokenizer, cutoff=cutoff + 1, cache_dir=cache, progress=False)


def test_score_reference_prompt_too_long(tiny64, char_tokenizer):
    ds = small_ds().select([0])
    with pytest.warns(UserWarning, match="fills the cutoff"):
        out = score_reference_logprobs(ds, tiny64, char_tokenizer, cutoff=5, progress=False)
    assert out["n_response_tokens"] == [0] and np.isnan(out["ref_logp"][0])


def test_build_dataset_cli_end_to_end(tmp_path, tiny_model_dir, capsys):
    store = tmp_path / "store"; store.mkdir()
    write_store(store, frame(SPEC).to_dict("records"), {"model": str(tiny_model_dir)})
    with open(SampleStore(store).shard_files()[0], "a") as f: f.write('{"torn')
    out = tmp_path / "rewarded"
    from o1_pruner.cli import main
    with pytest.warns(UserWarning, match="torn"):
        rc = main(["build-dataset", "--store", str(store), "--output_dir", str(out), "--lam", "5",
                   "--samples_per_problem", "3", "--cutoff", "64", "--batch_size", "2", "--system", "none"])
    assert rc == 0
    printed = capsys.readouterr().out
    assert "6 rows, 2 problems" in printed and "ref_logp" in printed
    ds = datasets.load_from_disk(str(out))
    for col in ("problem_id", "sample_idx", "messages", "completion", "length", "correct", "reward", "advantage",
                "lbar", "abar", "ref_logp", "n_response_tokens"):
        assert col in ds.column_names, col
    assert all(np.isfinite(ds["ref_logp"])) and min(ds["n_response_tokens"]) > 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["config"]["lam"] == 5.0 and m["reference_model"] == str(tiny_model_dir) and m["cutoff"] == 64
    assert m["load"]["torn_lines"] == 1 and m["source_fingerprint"]["records"] == 8
    # no scoring: the tokenizer still gives the end-of-turn text
    out2 = tmp_path / "noscore"
    assert build_dataset_cli(["--store", str(store), "--output_dir", str(out2), "--score_reference", "false"]) == 0
    ds2 = datasets.load_from_disk(str(out2))
    assert "ref_logp" not in ds2.column_names and ds2[0]["completion"].endswith(EOS)
    from o1_pruner.cli import main
    assert main(["build-dataset", "--store", str(tmp_path / "nothing"), "--output_dir", str(out2)]) == 2


def test_build_config_requires_paths():
    with pytest.raises(ValueError, match="--store"):
        BuildDatasetConfig(output_dir="x")


@pytest.mark.slow
def test_build_dataset_data_parallel_matches_one_process(tmp_path):
    """`build-dataset --data_parallel 2`: two spawned scoring processes (CPU here; one GPU group each on GPUs) give the
    same ref_logp as one, each writing its own cache file; a rerun after losing one shard's file rescores only it."""
    import datasets as hfds
    from o1_pruner.pipeline import Pipeline
    from o1_pruner.testing import run_cli
    from o1_pruner.toy import reference_path
    store = Pipeline("toy", small=True, root=tmp_path / "toy").stage("sample")
    args = ["build-dataset", "--store", store, "--reference_model", reference_path(), "--cutoff", 256, "--lam", 5,
            "--samples_per_problem", 0, "--batch_size", 16]
    run_cli(*args, "--output_dir", tmp_path / "one")
    run_cli(*args, "--output_dir", tmp_path / "two", "--data_parallel", 2)
    one, two = hfds.load_from_disk(str(tmp_path / "one")), hfds.load_from_disk(str(tmp_path / "two"))
    assert one["ref_logp"] == two["ref_logp"] and one["ref_token_hash"] == two["ref_token_hash"]
    cache = tmp_path / "two" / "ref_logp_cache"
    files = sorted(p.name for p in cache.glob("scores*.jsonl"))
    assert files == ["scores-000-of-002.jsonl", "scores-001-of-002.jsonl"]
    n1 = len((cache / files[1]).read_text().splitlines())
    (cache / files[1]).unlink()
    p = run_cli(*args, "--output_dir", tmp_path / "two", "--data_parallel", 2)
    assert len((cache / files[1]).read_text().splitlines()) == n1
    assert hfds.load_from_disk(str(tmp_path / "two"))["ref_logp"] == one["ref_logp"]
    assert json.loads((tmp_path / "two" / "manifest.json").read_text())["ref_numerics"]["dtype"] == "float32"
