"""The embedded default over several seeds: token reduction and accuracy change (mean and spread), stage wall times.

    python bench/bench_demo.py --seeds 0 1 2 --output_dir runs/bench-demo [extra o1-pruner demo flags]

Each seed is a full `o1-pruner demo` run (resumable: rerun the same command to continue).
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

from o1_pruner.cli import main as cli_main


def run(seeds, output_dir, extra):
    rows = []
    for seed in seeds:
        out = Path(output_dir) / f"seed{seed}"
        rc = cli_main(["demo", "--seed", str(seed), "--output_dir", str(out), *extra])
        if rc != 0:
            sys.exit(f"demo failed for seed {seed} (exit {rc})")
        rows.append(json.loads((out / "metrics.json").read_text()))
    return rows


def summarize(rows):
    labels = list(rows[0]["models"])
    print("\n| model | accuracy % (mean ± sd) | mean tokens (mean ± sd) | tokens vs base (mean ± sd) |")
    print("|---|---|---|---|")
    for label in labels:
        acc = [r["models"][label]["accuracy"] for r in rows]
        tok = [r["models"][label]["mean_tokens"] for r in rows]
        red = [r["models"][label]["token_reduction"] for r in rows if r["models"][label]["token_reduction"] is not None]
        sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0
        red_s = f"{-100 * statistics.mean(red):+.1f}% ± {100 * sd(red):.1f}" if red else ""
        print(f"| {label} | {statistics.mean(acc):.1f} ± {sd(acc):.1f} | {statistics.mean(tok):.1f} ± {sd(tok):.1f} | {red_s} |")
    print("\n| stage | seconds (mean over seeds) |\n|---|---|")
    for stage in rows[0]["stage_seconds"]:
        print(f"| {stage} | {statistics.mean(r['stage_seconds'].get(stage, 0) for r in rows):.1f} |")
    print(f"| total | {statistics.mean(r['total_seconds'] for r in rows):.1f} |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--output_dir", default="runs/bench-demo")
    a, extra = ap.parse_known_args()
    summarize(run(a.seeds, a.output_dir, extra))
