"""Packed vs padded training batches on the toy demo's data (CPU): tokens/s and pad fraction, the same steps.

usage: python bench/bench_packing.py [--steps 30] [--batch 32] [--root runs/bench-packing]
Builds the toy pipeline's samples and rewarded dataset once (the demo's settings: 400 problems x K=8), then trains the
same steps with `--packing false` and `--packing true` in one run and prints the logged real tokens/s and pad fraction.
"""
import argparse
import statistics
from pathlib import Path

from o1_pruner.pipeline import Pipeline
from o1_pruner.testing import run_train
from o1_pruner.toy import reference_path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--root", default="runs/bench-packing")
    a = ap.parse_args()
    data = Pipeline("toy", root=Path(a.root) / "toy").stage("build-dataset")
    rows = []
    for packing in ("false", "true"):
        run = run_train(Path(a.root) / f"packing-{packing}", [
            "--recipe", "tiny-cpu-train", "--model_name_or_path", str(reference_path()), "--dataset_dir", str(data),
            "--max_steps", str(a.steps), "--per_device_train_batch_size", str(a.batch), "--logging_steps", "5",
            "--packing", packing, "--seed", "0"])
        logs = [h for h in run["log_history"] if "tokens_per_s" in h][1:]   # the first window includes warm-up
        rows.append((packing, statistics.median(h["tokens_per_s"] for h in logs),
                     statistics.mean(h["pad_frac"] for h in logs), run["losses"][-1]))
    print(f"| batches | real tokens/s (median of {a.steps // 5 - 1} windows) | pad fraction | last loss |")
    print("|---|---|---|---|")
    for packing, tps, pad, loss in rows:
        print(f"| {'packed' if packing == 'true' else 'padded'} | {tps:,.0f} | {pad:.3f} | {loss:.5f} |")
    print(f"packed / padded tokens/s: {rows[1][1] / rows[0][1]:.2f}x")


if __name__ == "__main__":
    main()
