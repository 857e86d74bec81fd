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
        red_s = f"{-100 * statistics.mean(red):+.1f}% ± {100 * sd(red):.1f}" if red else ""
        print(f"| {label} | {statistics.mean(acc):.1f} ± {sd(acc):.1f} | {statistics.mean(tok):.1f} ± {sd(tok):.1f} | {red_s} |")
    print("\n| seed | pruned model | tokens vs base | accuracy change (points) | target met (<= 0.6x tokens, >= -1 point) "
          "| reference accuracy % by length quartile, all samples (Q1 shortest) | same, within problems | total s |")
    print("|---|---|---|---|---|---|---|---|")
    for seed, r in zip(seeds_of(rows), rows):
        q = r.get("reference_quartiles") or {}
        fmt = lambda xs: " ".join(f"{100 * x:.1f}" for x in xs) if xs else "?"
        met = r["token_reduction"] >= 0.4 and r["accuracy_change_points"] >= -1.0
        print(f"| {seed} | {r['pruned_model']} | {-100 * r['token_reduction']:+.1f}% | {r['accuracy_change_points']:+.1f} | "
              f"{'yes' if met else 'no'} | {fmt(q.get('acc_global'))} | {fmt(q.get('acc_within'))} | {r['total_seconds']:.0f} |")
    chg = [r["accuracy_change_points"] for r in rows]
    red = [r["token_reduction"] for r in rows]
    print(f"\npruned model over {len(rows)} seeds: tokens {-100 * statistics.mean(red):+.1f}% ± {100 * sd(red):.1f}, "
          f"accuracy {statistics.mean(chg):+.2f} ± {sd(chg):.2f} points")
    print("\n| stage | seconds, mean over seeds | max |\n|---|---|---|")
    for stage in rows[0]["stage_seconds"]:
        xs = [r["stage_seconds"].get(stage, 0) for r in rows]
        print(f"| {stage} | {statistics.mean(xs):.1f} | {max(xs):.1f} |")
    tot = [r["total_seconds"] for r in rows]
    print(f"| total | {statistics.mean(tot):.1f} | {max(tot):.1f} |")


def sd(xs):
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def seeds_of(rows):
    return [r["config"]["seed"] for r in rows]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--output_dir", default="runs/bench-demo")
    a, extra = ap.parse_known_args()
    summarize(run(a.seeds, a.output_dir, extra))
