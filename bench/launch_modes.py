"""Every launch mode of `o1-pruner train` against the plain 1-process run (CPU, gloo): trains, step-0 ratio, max loss
difference. The modes and data are those of tests/test_launch.py (the toy pipeline's build-dataset output).

usage: python bench/launch_modes.py [--root runs/bench-launch]
"""
import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_launch import MODES, STEPS, _args  # noqa: E402

from o1_pruner.pipeline import Pipeline  # noqa: E402
from o1_pruner.testing import run_train  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default="runs/bench-launch")
    root = Path(ap.parse_args().root)
    data = Pipeline("toy", small=True, root=root / "toy").stage("build-dataset")
    lora = ["--finetuning_type", "lora", "--lora_r", "4", "--learning_rate", "1e-2"]
    base = run_train(root / "plain", _args(data, 4))
    base_lora = run_train(root / "plain-lora", _args(data, 4, 1, *lora))
    modes = {**MODES, "torchrun-2-lora": (2, 2, 1, lora), "torchrun-2-lora-online-ref": (2, 2, 1, lora + [
        "--ref_source", "online"])}
    print(f"| launch mode | processes x batch x grad-accum | trains ({STEPS} steps) | step-0 ratio | max loss diff vs 1 process | s |")
    print("|---|---|---|---|---|---|")
    for name, (nproc, batch, ga, extra) in modes.items():
        ref = base_lora if "lora" in name else base
        t = time.perf_counter()
        try: run = run_train(root / name, _args(data, batch, ga, *extra), nproc=nproc)
        except RuntimeError as e:
            print(f"| {name} | {nproc or 1} x {batch} x {ga} | FAILED: {str(e).splitlines()[-1][:80]} | | | |"); continue
        moved = max(run["losses"]) - min(run["losses"]) > 1e-3
        diff = max(abs(a - b) for a, b in zip(run["losses"], ref["losses"]))
        print(f"| {name} | {nproc or 1} x {batch} x {ga} | {'yes' if moved else 'no'} | {run['ratios'][0]:.6f} | "
              f"{diff:.2e} | {time.perf_counter() - t:.0f} |")


if __name__ == "__main__":
    main()
