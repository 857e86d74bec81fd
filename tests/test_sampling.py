"""Stage 1 (pre-sampling): backends, the sample store, resume after kill -9, config checks, vLLM glue with fakes."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from o1_pruner.store import load_samples

from o1_pruner.backends import (Completion, GenParams, Request, TransformersBackend, chunk_requests,
                                completions_from_request_output, count_thinking_tokens, cut_at_eos, eos_token_ids,
                                resolve_tensor_parallel, shard_indices, vllm_sampling_kwargs)
from o1_pruner.config import ConfigError, list_recipes, parse_config
from o1_pruner.store import SampleStore, StoreMismatch
from o1_pruner.sampling import (SampleConfig, sample, split_completion, store_spec,
                                summarize, thinking_tokens)

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = [{"id": f"p{i}", "problem": f"What is {i} + {i}?" + " pad" * (i % 3), "answer": str(2 * i)} for i in range(8)]


@pytest.fixture(scope="module")
def problems_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "problems.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    return path


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    return TransformersBackend(str(tiny_model_dir), batch_size=8, progress=False)


def _cfg(model_dir, problems_file, out, **kw):
    base = dict(model=str(model_dir), dataset=str(problems_file), limit=4, k=3, temperature=1.0, top_p=1.0, max_tokens=24,
                backend="transformers", batch_size=8, output_dir=str(out), progress=False, system="marco")
    base.update(kw)
    return SampleConfig(**base)


@pytest.fixture(scope="module")
def small_store(tiny_model_dir, problems_file, backend, tmp_path_factory):
    out = tmp_path_factory.mktemp("store") / "samples"
    cfg = _cfg(tiny_model_dir, problems_file, out)
    return cfg, sample(cfg, backend=backend)


def _keys(store):
    return [(r["problem_id"], r["sample_idx"]) for r in store.iter_records(warn=False)]


# ------------------------------------------------------------------------------------------------ store basics
def test_k_samples_per_problem_and_roundtrip(small_store):
    cfg, store = small_store
    keys = _keys(store)
    assert sorted(keys) == [(f"p{i}", j) for i in range(4) for j in range(3)]
    assert len(store) == 12 and sorted(store.index()) == ["p0", "p1", "p2", "p3"]
    df, ds = store.to_pandas(), store.to_dataset()
    assert list(df.columns) == list(ds.column_names) and len(ds) == 12
    assert ds["completion"] == df["completion"].tolist() and ds["num_tokens"] == df["num_tokens"].tolist()
    assert set(df.finish_reason) <= {"stop", "length"} and df.correct.dtype == bool
    row = df.iloc[0]
    assert row.gold == "0" and row.prompt.startswith("<|im_start|>system\nYou are a helpful assistant")
    assert row.prompt.endswith("<|im_start|>assistant\n") and "What is 0 + 0?" in row.problem
    meta = json.loads((Path(cfg.output_dir) / "store.json").read_text())
    assert meta["k"] == 3 and meta["spec"]["sampling"]["temperature"] == 1.0 and len(meta["fingerprint"]) == 16


def test_rerun_generates_nothing_and_k_or_limit_extend(small_store, backend, tmp_path):
    cfg, _ = small_store
    out = tmp_path / "copy"
    import shutil
    shutil.copytree(cfg.output_dir, out)
    cfg = dataclasses.replace(cfg, output_dir=str(out))
    assert sample(cfg, backend=backend).generated == 0
    store = sample(dataclasses.replace(cfg, k=4, limit=5), backend=backend)
    assert store.generated == 4 + 4  # one more sample for 4 problems, 4 samples for the new problem
    assert sorted(_keys(store)) == [(f"p{i}", j) for i in range(5) for j in range(4)]
    assert json.loads((out / "store.json").read_text())["k"] == 4


def test_config_mismatch_is_a_clear_error(small_store, backend, tmp_path):
    cfg, _ = small_store
    with pytest.raises(StoreMismatch) as e:
        sample(dataclasses.replace(cfg, temperature=0.7, system="qwq"), backend=backend)
    msg = str(e.value)
    assert "sampling.temperature: stored 1.0, requested 0.7" in msg and "prompt.system" in msg
    assert "--overwrite" in msg and "--output_dir" in msg
    from o1_pruner.cli import main
    argv = ["sample", "--model", cfg.model, "--dataset", cfg.dataset, "--limit", "4", "--k", "3", "--max_tokens", "24",
            "--output_dir", cfg.output_dir, "--backend", "transformers", "--progress", "false"]
    assert main(argv) == 2  # default temperature 0.5 differs: refused before loading the model


def test_overwrite_starts_fresh(tiny_model_dir, problems_file, backend, tmp_path):
    cfg = _cfg(tiny_model_dir, problems_file, tmp_path / "s", limit=2, k=2)
    sample(cfg, backend=backend)
    store = sample(dataclasses.replace(cfg, temperature=0.3, overwrite=True), backend=backend)
    assert store.generated == 4 and len(store) == 4
    assert store.meta["spec"]["sampling"]["temperature"] == 0.3


def test_shards_write_one_store(tiny_model_dir, problems_file, backend, tmp_path):
    cfg = _cfg(tiny_model_dir, problems_file, tmp_path / "s", limit=5, k=2)
    for i in range(2):
        sample(dataclasses.replace(cfg, shard_index=i, num_shards=2), backend=backend)
    store = SampleStore(cfg.output_dir)
    assert [p.name for p in store.shard_files()] == ["samples-000-of-002.jsonl", "samples-001-of-002.jsonl"]
    assert sorted(_keys(store)) == [(f"p{i}", j) for i in range(5) for j in range(2)]
    first = {json.loads(line)["problem_id"] for line in store.shard_files()[0].read_text().splitlines()}
    assert first == {"p0", "p2", "p4"}
    with pytest.raises(StoreMismatch, match="sharding.num_shards: stored 2, requested 1"):   # one sharding plan per store
        sample(cfg, backend=backend)


def test_torn_and_duplicate_lines(tmp_path):
    store = SampleStore(tmp_path)
    store.init(store_spec(SampleConfig(model="m")), k=2)
    rec = lambda pid, j: {"problem_id": pid, "sample_idx": j, "completion": "x"}
    with store.writer() as w:
        w.write([rec("a", 0), rec("a", 1)])
    shard = store.shard_files()[0]
    with open(shard, "a") as f:
        f.write('{"problem_id": "a", "sample_idx": 0, "compl')
    with pytest.warns(UserWarning, match="1 torn last line"):
        assert len(store.records()) == 2
    with store.writer() as w:  # repairs the torn tail before appending
        assert w.repaired > 0
        w.write([rec("b", 0), rec("a", 1)])
    assert shard.read_text().count("\n") == 4 and all(json.loads(l) for l in shard.read_text().splitlines())
    assert _keys(store) == [("a", 0), ("a", 1), ("b", 0)] and store.skipped["duplicates"] == 1
    with open(shard, "a") as f:
        f.write("not json\n")
        f.write(json.dumps(rec("c", 0)) + "\n")
    with pytest.warns(UserWarning, match=r"1 corrupt line\(s\) \(first at .*:5\)"):
        assert len(store.records()) == 4


def test_second_writer_on_same_shard_is_refused(tmp_path):
    store = SampleStore(tmp_path)
    with store.writer():
        with pytest.raises(StoreMismatch, match="another process"):
            store.writer()


# ------------------------------------------------------------------------------------------------ kill -9 and resume
def test_resume_after_sigkill(tiny_model_dir, problems_file, backend, tmp_path):
    out = tmp_path / "killed"
    argv = [sys.executable, "-m", "o1_pruner.cli", "sample", "--model", str(tiny_model_dir), "--dataset", str(problems_file),
            "--k", "4", "--batch_size", "2", "--max_tokens", "32", "--temperature", "1.0", "--top_p", "1.0",
            "--backend", "transformers", "--output_dir", str(out), "--progress", "false"]
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    shard = out / "samples-000-of-001.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if shard.exists() and shard.stat().st_size > 0:
            break
        time.sleep(0.02)
    assert proc.poll() is None, f"sampler ended before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    time.sleep(0.1)  # let it be somewhere in the middle of a later batch
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    store = SampleStore(out)
    before = _keys(store)
    assert 0 < len(before) < 32 and len(set(before)) == len(before)
    assert store.skipped["corrupt"] == 0 and store.skipped["duplicates"] == 0
    cfg = SampleConfig(model=str(tiny_model_dir), dataset=str(problems_file), k=4, batch_size=2, max_tokens=32,
                       temperature=1.0, top_p=1.0, backend="transformers", output_dir=str(out), progress=False)
    resumed = sample(cfg, backend=backend)
    assert resumed.generated == 32 - len(before)
    after = _keys(resumed)
    assert sorted(after) == [(f"p{i}", j) for i in range(8) for j in range(4)]
    assert resumed.skipped == {"torn": 0, "corrupt": 0, "duplicates": 0}
    assert after[: len(before)] == before  # old records untouched
    for line in shard.read_text().splitlines():
        json.loads(line)


# ------------------------------------------------------------------------------------------------ token counts
def test_token_counts_match_the_tokenizer(backend, char_tokenizer):
    prompts = ["<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n", "<|im_start|>user\n12+30<|im_end|>\n<|im_start|>assistant\n"]
    outs = backend.generate(prompts, 6, GenParams(temperature=1.0, top_p=1.0, max_tokens=40, seed=3))
    flat = [c for cs in outs for c in cs]
    assert {c.finish_reason for c in flat} == {"stop", "length"}  # both happen with this seed
    for c in flat:
        n_text = len(char_tokenizer(c.text, add_special_tokens=False)["input_ids"])
        # num_tokens = tokens of the completion text, + 1 for the EOS when the sample stopped by itself
        assert c.num_tokens == n_text + (c.finish_reason == "stop") == len(c.token_ids)
        assert not c.text.endswith("<|im_end|>")
        if c.finish_reason == "length":
            assert c.num_tokens == 40
        else:
            assert c.token_ids[-1] == char_tokenizer.eos_token_id
    again = backend.generate(prompts, 6, GenParams(temperature=1.0, top_p=1.0, max_tokens=40, seed=3))
    assert [c.text for cs in again for c in cs] == [c.text for c in flat]  # deterministic with a seed


def test_length_cut_and_greedy(backend):
    outs = backend.generate(["abc", "<|im_start|>user\nx<|im_end|>\n"], 2, GenParams(temperature=0, max_tokens=5))
    for cs in outs:
        assert cs[0].text == cs[1].text  # greedy
        for c in cs:
            assert (c.num_tokens == 5 and c.finish_reason == "length") or c.finish_reason == "stop"
    assert any(c.finish_reason == "length" for cs in outs for c in cs)


def test_stop_strings_only_match_generated_text(backend):
    greedy = backend.generate(["xyz"], 1, GenParams(temperature=0, max_tokens=12))[0][0]
    stop = greedy.text[3:5]
    first = greedy.text.find(stop)
    c = backend.generate(["xyz"], 1, GenParams(temperature=0, max_tokens=12, stop=[stop]))[0][0]
    assert c.finish_reason == "stop" and c.text == greedy.text[:first]
    assert c.num_tokens == first + len(stop)  # char tokenizer: tokens up to and including the stop string


def test_eos_helpers(char_tokenizer):
    gc = types.SimpleNamespace(eos_token_id=[7, 2])
    assert eos_token_ids(char_tokenizer, gc) == [7, 2]  # the tokenizer's <|im_end|> has id 2
    assert eos_token_ids(char_tokenizer, types.SimpleNamespace(eos_token_id=9)) == [9, 2]
    assert cut_at_eos([5, 6, 2, 0, 0], [2]) == (3, True) and cut_at_eos([5, 6], [2]) == (2, False)


# ------------------------------------------------------------------------------------------------ thinking
def test_count_thinking_tokens_on_ids():
    assert count_thinking_tokens([3, 10, 11, 4, 12, 2], end_think_id=4, start_think_id=3) == 4
    assert count_thinking_tokens([10, 11, 4, 12], end_think_id=4, opened_by_prompt=True) == 3
    assert count_thinking_tokens([10, 11, 12], end_think_id=4, opened_by_prompt=True) == 3  # never closed: all thinking
    assert count_thinking_tokens([3, 10, 11], end_think_id=4, start_think_id=3) == 3
    assert count_thinking_tokens([10, 11, 12], end_think_id=4, start_think_id=3) is None


def test_thinking_tokens_from_completions(char_tokenizer):
    tok = char_tokenizer
    ids = lambda s: tok(s, add_special_tokens=False)["input_ids"]
    text = "<think>hmm</think>so \\boxed{2}"
    c = Completion(text, ids(text) + [tok.eos_token_id], len(ids(text)) + 1, "stop")
    assert thinking_tokens(tok, "p", c) == 1 + 3 + 1
    c2 = Completion("hmm</think>ok", ids("hmm</think>ok"), 6, "stop")
    assert thinking_tokens(tok, "...assistant\n<think>\n", c2) == 4
    assert thinking_tokens(tok, "p", Completion("plain", ids("plain"), 5, "stop")) is None

    class MultiTokenThink:  # a tokenizer where </think> is not one token: fall back to counting the thinking text
        def get_vocab(self): return {"a": 0}
        def __call__(self, text, add_special_tokens=False): return {"input_ids": list(range(len(text.split())))}
    c3 = Completion("one two </think> three", [0] * 9, 9, "stop")
    assert thinking_tokens(MultiTokenThink(), "p", c3) == 3
    assert split_completion("<|im_start|>assistant\n<think>\n", "so it is 4") == ("so it is 4", "")


# ------------------------------------------------------------------------------------------------ vLLM pure parts
def _fake_output(*samples):
    outs = [types.SimpleNamespace(index=i, text=t, token_ids=tuple(ids), finish_reason=fr) for i, (t, ids, fr) in samples]
    return types.SimpleNamespace(request_id="0", prompt=None, outputs=outs, finished=True)


def test_vllm_output_conversion_and_params():
    out = _fake_output((1, ("b<|im_end|>", [5, 2], "stop")), (0, ("aaa", [4, 4, 4], "length")))
    cs = completions_from_request_output(out, eos_texts=["<|im_end|>"])
    assert [(c.text, c.num_tokens, c.finish_reason, c.token_ids) for c in cs] == [("aaa", 3, "length", [4, 4, 4]),
                                                                               ("b", 2, "stop", [5, 2])]
    kw = vllm_sampling_kwargs(GenParams(temperature=0.5, top_p=0.8, max_tokens=8192, stop=["\n\n\n"], seed=0), n=16, seed=11)
    assert kw == dict(n=16, temperature=0.5, top_p=0.8, top_k=-1, max_tokens=8192, seed=11, skip_special_tokens=False,
                      spaces_between_special_tokens=False, stop=["\n\n\n"])
    assert vllm_sampling_kwargs(GenParams(temperature=0), 1, None)["top_p"] == 1.0


def test_sharding_chunking_and_tp():
    parts = [shard_indices(10, i, 3) for i in range(3)]
    assert sorted(sum(parts, [])) == list(range(10)) and parts[0] == [0, 3, 6, 9]
    with pytest.raises(ValueError):
        shard_indices(10, 3, 3)
    reqs = [Request("p", n) for n in (3, 3, 5, 1)]
    assert [[r.n for r in c] for c in chunk_requests(reqs, 6)] == [[3, 3], [5, 1]]
    assert [[r.n for r in c] for c in chunk_requests(reqs, 2)] == [[3], [3], [5], [1]]  # a request is never split
    assert resolve_tensor_parallel(0, device_count=8) == 8 and resolve_tensor_parallel(2, device_count=8) == 2
    with pytest.raises(ValueError, match="no GPU"):
        resolve_tensor_parallel(0, device_count=0)


def _install_fake_vllm(monkeypatch, char_tokenizer, calls, finish=lambda i: "stop"):
    """A stand-in `vllm` module whose engine answers sample i with `\\boxed{i}` and finish reason `finish(i)`."""
    class SamplingParams:
        def __init__(self, **kw): self.__dict__.update(kw)

    class LLM:
        def __init__(self, **kw): calls["engine"] = kw
        def get_tokenizer(self): return char_tokenizer
        def generate(self, prompts, sps, use_tqdm=True):
            calls.setdefault("prompts", []).extend(prompts); calls.setdefault("params", []).extend(sps)
            res = []
            for p, sp in zip(prompts, sps):
                samples = []
                for i in range(sp.n):
                    text = f"<think>a</think>\\boxed{{{i}}}"
                    ids = char_tokenizer(text, add_special_tokens=False)["input_ids"]
                    samples.append((i, (text, ids + [char_tokenizer.eos_token_id], finish(i))))
                res.append(_fake_output(*samples))
            return res

    monkeypatch.setitem(sys.modules, "vllm", types.SimpleNamespace(LLM=LLM, SamplingParams=SamplingParams, __version__="fake"))


def test_vllm_backend_with_a_fake_engine(monkeypatch, tiny_model_dir, problems_file, char_tokenizer, tmp_path):
    """The whole vLLM path (engine args, requests, conversion, store) against a stand-in `vllm` module."""
    calls = {}
    _install_fake_vllm(monkeypatch, char_tokenizer, calls)
    from o1_pruner.backends import VLLMBackend
    be = VLLMBackend(str(tiny_model_dir), tensor_parallel_size=2, max_model_len=4096, batch_size=4, progress=False,
                     engine_kwargs={"enable_prefix_caching": True})
    assert calls["engine"]["tensor_parallel_size"] == 2 and calls["engine"]["max_model_len"] == 4096
    assert calls["engine"]["enable_prefix_caching"] is True
    cfg = _cfg(tiny_model_dir, problems_file, tmp_path / "v", limit=3, k=2, backend="vllm", system="none",
               user_template="{problem}")
    store = sample(cfg, backend=be)
    df = store.to_pandas()
    assert len(df) == 6 and set(df.thinking_tokens) == {3} and (df.completion.str.len() == 25).all()
    assert (df.num_tokens == 13).all() and df.extracted.tolist() == ["0", "1"] * 3
    assert df[df.sample_idx == 0].correct.tolist() == [True, False, False]  # gold answers are 0, 2, 4
    assert all(set(p) == {"prompt_token_ids"} for p in calls["prompts"])  # token ids: no second BOS
    assert [p.n for p in calls["params"]] == [2, 2, 2] and len({p.seed for p in calls["params"]}) == 3
    assert store.meta["runtime"]["backend"] == "vllm"


def test_vllm_unknown_finish_reasons_are_kept():
    out = _fake_output((0, ("a", [4], "abort")), (1, ("b", [5], None)), (2, ("c", [6], "repetition")),
                       (3, ("d", [7, 2], "stop")))
    assert [c.finish_reason for c in completions_from_request_output(out)] == ["abort", None, "repetition", "stop"]


def test_unfinished_samples_are_recorded_and_graded_wrong(monkeypatch, tiny_model_dir, problems_file, char_tokenizer,
                                                         tmp_path):
    """vLLM reasons other than stop/length (abort, None = unfinished) reach the store as they are, graded wrong."""
    _install_fake_vllm(monkeypatch, char_tokenizer, {}, finish=lambda i: {0: "abort", 1: None}.get(i, "stop"))
    from o1_pruner.backends import VLLMBackend
    be = VLLMBackend(str(tiny_model_dir), batch_size=4, progress=False)
    cfg = _cfg(tiny_model_dir, problems_file, tmp_path / "v", limit=3, k=3, backend="vllm", system="none",
               user_template="{problem}")
    store = sample(cfg, backend=be)
    raw = [json.loads(line) for f in store.shard_files() for line in f.read_text().splitlines()]
    assert [r["finish_reason"] for r in raw] == ["abort", None, "stop"] * 3  # JSON null for None
    df = store.to_pandas()
    assert df.finish_reason.fillna("<missing>").tolist() == ["abort", "<missing>", "stop"] * 3
    p0 = df[df.problem_id == "p0"].set_index("sample_idx")
    assert p0.loc[0, "extracted"] == "0" and not p0.loc[0, "correct"]  # right text (gold 0), but aborted
    assert "not finished" in p0.loc[0, "grade_reason"] and "correct" in p0.loc[0, "grade_reason"]
    ds = store.to_dataset()
    assert ds["finish_reason"] == ["abort", None, "stop"] * 3
    line = summarize(store)
    assert "not finished normally: 6 (None 3, abort 3)" in line and "truncated 0.000" in line
    from o1_pruner.analysis import analyze
    summ = analyze(store.path)["summary"]
    assert summ["other_finish_reasons"] == {"None": 3, "abort": 3} and summ["truncation_rate"] == 0
    from o1_pruner.evaluate import store_metrics
    m = store_metrics(load_samples(store.path))
    assert m["unfinished_rate"] == pytest.approx(2 / 3) and m["truncation_rate"] == 0


# ------------------------------------------------------------------------------------------------ recipes / CLI
@pytest.mark.parametrize("name", ["marco-o1-sample", "qwq-32b-sample", "r1-distill-1.5b-sample", "qwen3-8b-sample"])
def test_recipes_parse(name):
    assert name in list_recipes()
    (cfg,) = parse_config([SampleConfig], ["--recipe", name, "--limit", "3"])
    assert cfg.limit == 3 and cfg.max_tokens == 8192
    expected = {"marco-o1-sample": (16, 0.5, 0.8, "marco", 1), "qwq-32b-sample": (12, 0.5, 0.8, "qwq", 0),
                "r1-distill-1.5b-sample": (16, 0.6, 0.95, None, 1), "qwen3-8b-sample": (16, 0.6, 0.95, None, 1)}[name]
    assert (cfg.k, cfg.temperature, cfg.top_p, cfg.system, cfg.tensor_parallel_size) == expected
    if name == "qwen3-8b-sample":
        assert cfg.enable_thinking is True


def test_bad_flags_are_config_errors():
    with pytest.raises(ConfigError, match="top_p"):
        parse_config([SampleConfig], ["--model", "m", "--top_p", "0"])
    (cfg,) = parse_config([SampleConfig], ["--model", "m", "--shard-index", "1", "--num-shards", "2", "--stop", "a", "b"])
    assert (cfg.shard_index, cfg.num_shards, cfg.stop) == (1, 2, ["a", "b"])


def test_gpu_groups_follow_the_users_visible_devices():
    from o1_pruner.sampling import gpu_groups
    assert gpu_groups(2, 2, "4,5,6,7", device_count=4) == ["4,5", "6,7"]
    assert gpu_groups(3, 1, " 2, 7 ,5,", device_count=3) == ["2", "7", "5"]
    assert gpu_groups(2, 1, "3,1,-1,0", device_count=2) == ["3", "1"]  # CUDA ignores entries after an invalid one
    assert gpu_groups(2, 4, None, device_count=8) == ["0,1,2,3", "4,5,6,7"]
    assert gpu_groups(1, 2, "6,7", device_count=2) == ["6,7"]
    assert gpu_groups(4, 1, None, device_count=0) is None and gpu_groups(4, 1, "", device_count=0) is None
    with pytest.raises(ValueError, match=r"needs 6 GPUs; 4 visible \(4,5,6,7\)"):
        gpu_groups(3, 2, "4,5,6,7", device_count=4)


def test_data_parallel_launcher_gives_each_worker_its_devices(monkeypatch, tmp_path, capsys, tiny_model_dir):
    """The launcher's workers: commands and CUDA_VISIBLE_DEVICES, with a stand-in Popen and four visible GPUs."""
    import torch
    import o1_pruner.sampling as sampling
    from o1_pruner.cli import main
    started = []

    class FakePopen:
        def __init__(self, cmd, env):
            self.code = 3 if started else 0  # the second worker fails
            started.append((cmd, env))
        def wait(self): return self.code

    monkeypatch.setattr(sampling.subprocess, "Popen", FakePopen)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    out = tmp_path / "dp"
    argv = ["sample", "--model", str(tiny_model_dir), "--output_dir", str(out), "--data_parallel", "2",
            "--tensor_parallel_size", "2"]
    assert main(argv) == 3  # the worst exit code of the workers
    assert [env["CUDA_VISIBLE_DEVICES"] for _, env in started] == ["4,5", "6,7"]
    for s, (cmd, env) in enumerate(started):
        assert cmd[1:4] == ["-m", "o1_pruner.cli", "sample"] and cmd.count("--data_parallel") == 1
        tail = cmd[cmd.index("--shard_index"):]
        assert tail == ["--shard_index", str(s), "--num_shards", "2", "--data_parallel", "1",
                        "--tensor_parallel_size", "2"]
    started.clear()
    assert main(argv[:-4] + ["--data_parallel", "3", "--tensor_parallel_size", "2"]) == 2  # too many GPUs asked for
    assert "needs 6 GPUs; 4 visible (4,5,6,7)" in capsys.readouterr().err and not started


@pytest.mark.slow
def test_data_parallel_launcher(tiny_model_dir, problems_file, tmp_path, monkeypatch):
    """`--data_parallel 2` runs two shard processes into one store (on CPU: no CUDA_VISIBLE_DEVICES split)."""
    from o1_pruner.cli import main
    monkeypatch.setenv("PYTHONPATH", str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = tmp_path / "dp"
    argv = ["sample", "--model", str(tiny_model_dir), "--dataset", str(problems_file), "--limit", "4", "--k", "2",
            "--max_tokens", "8", "--backend", "transformers", "--output_dir", str(out), "--progress", "false",
            "--data_parallel", "2", "--overwrite"]
    assert main(argv) == 0
    store = SampleStore(out)
    assert [p.name for p in store.shard_files()] == ["samples-000-of-002.jsonl", "samples-001-of-002.jsonl"]
    assert sorted(_keys(store)) == [(f"p{i}", j) for i in range(4) for j in range(2)]
