"""Bad invocations end in one clear line and exit code 2, detected before expensive work; the CLI as typed.

Each row: the command line, a piece of the one-line message. The commands run in-process through `o1_pruner.cli.main`
(the console script's entry point); a few run as a subprocess to check that no traceback reaches the terminal."""
import json
import os
import subprocess
import sys

import pytest

from o1_pruner import cli
from o1_pruner.pipeline import Pipeline
from o1_pruner.testing import write_store
from o1_pruner.toy import reference_path

TOY = str(reference_path())


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    "A store written by the real sample stage, its rewarded dataset, and some bad input files."
    root = tmp_path_factory.mktemp("toy")
    run = Pipeline("toy", small=True, root=root / "run")
    files = {"store": run.stage("sample"), "rewarded": run.stage("build-dataset")}
    (root / "empty.jsonl").write_text("")
    (root / "binary.jsonl").write_bytes(b'{"problem": "1+1", "answer": "2"}\n\xff\xfe\x00garbage\n')
    (root / "broken.jsonl").write_text('{"problem": "1+1", "answer": "2"}\n{"problem": "2+2", "answ\n')
    one = [dict(problem_id=f"p{i}", sample_idx=0, problem="1+1", gold="2", prompt="p", completion="2", num_tokens=3,
                finish_reason="stop", correct=True) for i in range(3)]
    files["one_sample"] = write_store(root / "one-sample", one, {"model": TOY})
    ro = root / "read-only"   # a file where a folder is wanted: unwritable even for root (CI runs as root)
    ro.write_text("not a folder")
    return {k: str(v) for k, v in files.items()} | {"root": str(root), "ro": str(ro)}


def sample(toy, *extra, out="s"):
    return ["sample", "--model", TOY, "--dataset", "toy-missing", "--output_dir", f"{toy['root']}/{out}",
            "--backend", "transformers", "--device", "cpu", *extra]


def build(toy, *extra, store=None, out="b"):
    return ["build-dataset", "--store", store or toy["store"], "--output_dir", f"{toy['root']}/{out}", *extra]


def train(toy, *extra, out="t"):
    return ["train", "--recipe", "tiny-cpu-train", "--model_name_or_path", TOY, "--dataset_dir", toy["rewarded"],
            "--output_dir", f"{toy['root']}/{out}", *extra]


CASES = {  # name: (function of the fixture -> argv, piece of the message)
    "sample missing file": (lambda t: sample(t)[:4] + [f"{t['root']}/nope.jsonl"] + sample(t)[5:], "nope.jsonl"),
    "sample empty file": (lambda t: sample(t)[:4] + [f"{t['root']}/empty.jsonl"] + sample(t)[5:], "empty"),
    "sample non-UTF-8 file": (lambda t: sample(t)[:4] + [f"{t['root']}/binary.jsonl"] + sample(t)[5:], "byte"),
    "sample malformed line": (lambda t: sample(t)[:4] + [f"{t['root']}/broken.jsonl"] + sample(t)[5:], "line 2"),
    "sample missing model": (lambda t: ["sample", "--model", f"{t['root']}/no-model", "--dataset", "gsm8k-test",
                                         "--output_dir", f"{t['root']}/s2"], "no-model"),
    "sample limit -3": (lambda t: sample(t, "--limit", "-3"), "limit"),
    "sample dtype foo": (lambda t: sample(t, "--dtype", "foo"), "dtype"),
    "sample cuda without GPU": (lambda t: sample(t, "--device", "cuda"), "GPU"),
    "sample read-only output": (lambda t: ["sample", "--model", TOY, "--dataset", "gsm8k-test", "--limit", "1",
                                           "--k", "1", "--max_tokens", "4", "--output_dir", f"{t['ro']}/s"], "write"),
    "build batch_size 0": (lambda t: build(t, "--batch_size", "0"), "batch_size"),
    "build batch_size -1": (lambda t: build(t, "--batch_size", "-1"), "batch_size"),
    "build chunk_size 0": (lambda t: build(t, "--chunk_size", "0"), "chunk_size"),
    "build lam nan": (lambda t: build(t, "--lam", "nan"), "lam"),
    "build lam inf": (lambda t: build(t, "--lam", "inf"), "lam"),
    "build lam -5": (lambda t: build(t, "--lam", "-5"), "lam"),
    "build cutoff 0": (lambda t: build(t, "--cutoff", "0"), "cutoff"),
    "build missing store": (lambda t: build(t, store=f"{t['root']}/nope"), "nope"),
    "build no rows (one sample per problem)": (lambda t: build(t, store=t["one_sample"], out="b1"), "no training rows"),
    "build read-only output": (lambda t: build(t, out="read-only/b"), "write"),
    "train learning_rate -1": (lambda t: train(t, "--learning_rate", "-1"), "learning_rate"),
    "train batch 0": (lambda t: train(t, "--per_device_train_batch_size", "0"), "per_device_train_batch_size"),
    "train clip_eps -1": (lambda t: train(t, "--clip_eps", "-1"), "clip_eps"),
    "train missing dataset": (lambda t: train(t)[:6] + [f"{t['root']}/nope"] + train(t)[7:], "nope"),
    "train missing model": (lambda t: train(t)[:4] + [f"{t['root']}/no-model"] + train(t)[5:], "no-model"),
    "train read-only output": (lambda t: train(t, out="read-only/t"), "write"),
    "train resume without checkpoints": (lambda t: train(t, "--resume_from_checkpoint", "true", out="t-resume"),
                                         "checkpoint"),
    "analyze missing store": (lambda t: ["analyze", "--store", f"{t['root']}/nope", "--output_dir", f"{t['root']}/a"],
                              "nope"),
    "evaluate missing model": (lambda t: ["evaluate", "--models", f"base={t['root']}/no-model", "--datasets",
                                          "gsm8k-test", "--output_dir", f"{t['root']}/e"], "no-model"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_invocation_is_one_line_exit_2(name, toy, capsys):
    argv, piece = CASES[name][0](toy), CASES[name][1]
    assert cli.main(argv) == 2, name
    err = capsys.readouterr().err.strip().splitlines()
    assert err and piece in err[-1], (name, err[-5:])
    assert "Traceback" not in "\n".join(err)


def test_help_of_every_command(capsys):
    for cmd in cli.COMMANDS:
        with pytest.raises(SystemExit) as e: cli.main([cmd, "--help"])
        assert e.value.code == 0, cmd
        assert "usage" in capsys.readouterr().out.lower(), cmd


def test_no_traceback_reaches_the_terminal(toy):
    p = subprocess.run([sys.executable, "-m", "o1_pruner.cli", *CASES["build lam nan"][0](toy)], capture_output=True,
                       text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert p.returncode == 2 and "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_empty_result_leaves_no_folder(toy):
    out = f"{toy['root']}/b-empty"
    assert cli.main(build(toy, store=toy["one_sample"], out="b-empty")) == 2
    assert not os.path.exists(out) or not os.listdir(out)


def test_gold_store_json_is_not_required_for_the_model(toy):
    meta = json.loads(open(f"{toy['store']}/store.json").read())
    assert meta["spec"]["model"] and "model" not in meta   # the sampler writes it under spec: build-dataset finds it
