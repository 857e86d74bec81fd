"""bench/gpu_check.py --dry-run runs every row of the GPU check at tiny size on the CPU, through the library's own
trainer, scorer and backends: the check cannot rot between GPU runs."""
import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "bench" / "gpu_check.py"
sys.path.insert(0, str(REPO / "bench"))
from gpu_check import ROWS  # noqa: E402


def run(tmp_path, *args):
    out = tmp_path / "gpu_check.json"
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    env.update(OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    p = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(out), *args], capture_output=True,
                       text=True, timeout=600, env=env, cwd=tmp_path)
    return p, (json.loads(out.read_text()) if out.exists() else None)


def number(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


def test_dry_run_gives_every_row_with_numbers(tmp_path):
    p, doc = run(tmp_path)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    rows = {r["row"]: r for r in doc["rows"]}
    assert list(rows) == list(ROWS) and doc["complete"]
    for key, r in rows.items():
        assert "error" not in r, (key, r["error"])
        if key == "generate-vllm":   # no vLLM on the CPU: the model and tokenizer folders it would load are checked
            assert r["skipped"].startswith("dry run: model and tokenizer folders saved and reloaded"), r
            continue
        assert "skipped" not in r, (key, r)
        if key.startswith("step0"):
            assert abs(r["ratio_step0"] - 1) <= 1e-4 and r["ratio_ok"] and r["weights_as_scored"], r
            assert r["numerics"] == r["scored_numerics"] == {"dtype": "float32", "autocast": "bfloat16",
                                                              "attn_implementation": "sdpa"}
            continue
        for k in ("step_s", "tokens_per_s", "mfu"):
            assert number(r[k]), (key, k, r.get(k))
        if key.startswith("train"):
            assert r["loss_finite"] and abs(r["ratio_step0"] - 1) <= 1e-4, r
            assert (r["pad_frac"] == 0) == ("packed" in key)
    table = p.stdout[p.stdout.index("| row"):]
    assert all(ROWS[k][0] in table for k in ROWS)
    assert ">= 45% MFU" in table and "<= 30 GiB" in table


def test_a_failing_row_is_recorded_and_the_next_still_runs(tmp_path):
    p, doc = run(tmp_path, "--attn", "no_such_attention", "--only", "train-padded-cached,score-bf16")
    assert p.returncode == 1
    assert [r["row"] for r in doc["rows"]] == ["train-padded-cached", "score-bf16"]
    assert all("no_such_attention" in r["error"] for r in doc["rows"]), doc["rows"]


def test_rows_past_the_budget_are_skipped_and_say_so(tmp_path):
    p, doc = run(tmp_path, "--budget-s", "0", "--only", "step0-padded,generate-transformers")
    assert p.returncode == 0, p.stderr[-2000:]
    assert [r["skipped"].split(":")[0] for r in doc["rows"]] == ["budget", "budget"]
    assert "--budget-s 0" in p.stdout
