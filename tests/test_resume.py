"""Long runs resume, and writers do not collide: a killed `train` continues from its newest checkpoint, a changed
configuration is refused, stores accept writers only with a consistent sharding plan, a second writer of a shard or
of a build-dataset folder is refused before any model loads."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from o1_pruner import cli, sampling
from o1_pruner.pipeline import Pipeline
from o1_pruner.config import output_lock
from o1_pruner.store import SampleStore
from o1_pruner.testing import run_cli
from o1_pruner.toy import reference_path

TOY = str(reference_path())


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    run = Pipeline("toy", small=True, root=tmp_path_factory.mktemp("toy"))
    return {"store": run.stage("sample"), "rewarded": run.stage("build-dataset"), "problems": run.root / "data"}


def _train_args(toy, out, steps=200, *extra):
    return ["train", "--recipe", "tiny-cpu-train", "--model_name_or_path", TOY, "--dataset_dir", str(toy["rewarded"]),
            "--output_dir", str(out), "--max_steps", str(steps), "--save_strategy", "steps", "--save_steps", "10",
            "--per_device_train_batch_size", "4", *extra]


@pytest.mark.slow
def test_killed_train_resumes_from_its_newest_checkpoint(toy, tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-m", "o1_pruner.cli", *_train_args(toy, out)], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not any(out.glob("checkpoint-*/trainer_state.json")) and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    assert any(out.glob("checkpoint-*")) and not (out / "o1_pruner_train.json").exists(), "killed too late"
    done = run_cli(*_train_args(toy, out))
    assert "resuming from" in done.stdout + done.stderr
    info = json.loads((out / "o1_pruner_train.json").read_text())
    steps = [h["step"] for h in info["log_history"] if "loss" in h]
    assert info["global_step"] == 200 and steps == sorted(set(steps)) and steps[-1] == 200
    again = subprocess.run([sys.executable, "-m", "o1_pruner.cli", *_train_args(toy, out, 200, "--learning_rate", "0.5")],
                           capture_output=True, text=True, env=env)
    assert again.returncode == 2 and "learning_rate" in again.stderr.strip().splitlines()[-1], again.stderr[-500:]


def test_resume_from_checkpoint_true_and_path(toy, tmp_path):
    import shutil
    out = tmp_path / "run"
    run_cli(*_train_args(toy, out, 20))
    with pytest.raises(RuntimeError, match="finished run"):   # a rerun of a finished run has nothing to train
        run_cli(*_train_args(toy, out, 20, "--resume_from_checkpoint", "true"))
    shutil.rmtree(out / "checkpoint-20"); (out / "o1_pruner_train.json").unlink()   # as if killed after step 10
    done = run_cli(*_train_args(toy, out, 20, "--resume_from_checkpoint", "true"))
    assert "resuming from" in done.stdout + done.stderr
    assert json.loads((out / "o1_pruner_train.json").read_text())["global_step"] == 20
    run_cli(*_train_args(toy, out, 20, "--resume_from_checkpoint", str(out / "checkpoint-10")))
    assert json.loads((out / "o1_pruner_train.json").read_text())["global_step"] == 20


def test_store_refuses_another_sharding_plan(toy, capsys):
    argv = ["sample", "--recipe", str(toy["store"].parent / "configs" / "sample.yaml"), "--num_shards", "2"]
    assert cli.main(argv) == 2
    assert "sharding.num_shards: stored 1, requested 2" in capsys.readouterr().err


def test_second_writer_of_a_shard_is_refused_before_the_model_loads(toy, monkeypatch, capsys):
    monkeypatch.setattr(sampling, "backend_for", lambda *a, **k: pytest.fail("the model was loaded"))
    with SampleStore(toy["store"]).writer():
        assert cli.main(["sample", "--recipe", str(toy["store"].parent / "configs" / "sample.yaml")]) == 2
    assert "being written by another process" in capsys.readouterr().err


def test_second_build_dataset_on_one_folder_is_refused(toy, tmp_path, capsys):
    out = tmp_path / "rewarded"
    with output_lock(out):
        rc = cli.main(["build-dataset", "--recipe", str(toy["store"].parent / "configs" / "build-dataset.yaml"),
                       "--output_dir", str(out)])
    assert rc == 2 and "being written by another o1-pruner process" in capsys.readouterr().err
