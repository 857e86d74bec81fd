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


def mean_sd(xs, fmt="{:.1f}"):
    xs = [x for x in xs if x is not None]
    return f"{fmt.format(statistics.mean(xs))} ± {fmt.format(sd(xs))}" if xs else ""


def summarize(rows):
    "Markdown tables: every model over seeds, the pruned model per seed, the reference's statistics, stage times."
    labels = list(rows[0]["models"])
    cols = ["accuracy %", "mean tokens", "tokens vs base %", "accuracy change (points)", "AES"]
    print(f"\nmean ± sd over {len(rows)} seeds ({', '.join(map(str, seeds_of(rows)))})\n")
    print("| model | " + " | ".join(cols) + " |\n|---|" + "---|" * len(cols))
    for label in labels:
        cells = [mean_sd([r["models"][label][c] for r in rows], "{:.2f}" if c == "AES" else "{:.1f}") for c in cols]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\n| seed | pruned model | tokens vs base % | accuracy change (points) | target met (<= 0.6x tokens, "
          ">= -1 point) | reference within Q1..Q4 % | reference global Q1..Q4 % | demo wall s |")
    print("|---|---|---|---|---|---|---|---|")
    for seed, r in zip(seeds_of(rows), rows):
        m, ref = r["models"][r["pruned_model"]], list(r["reference_statistics"].values())[-1]  # after the paper's
        q = lambda kind: " ".join(f"{ref[f'{kind} Q{i}']:.1f}" for i in range(1, 5))
        print(f"| {seed} | {r['pruned_model']} | {m['tokens vs base %']:+.1f} | {m['accuracy change (points)']:+.1f} | "
              f"{'yes' if r['target_met'] else 'no'} | {q('within')} | {q('global')} | {r['wall_seconds']:.0f} |")
    red = [r["models"][r["pruned_model"]]["tokens vs base %"] for r in rows]
    chg = [r["models"][r["pruned_model"]]["accuracy change (points)"] for r in rows]
    print(f"\npruned model over {len(rows)} seeds: tokens {mean_sd(red)}%, accuracy {mean_sd(chg, '{:+.2f}')} points; "
          f"target met on {sum(r['target_met'] for r in rows)} of {len(rows)} seeds")
    print("\n| stage | seconds, mean over seeds | max |\n|---|---|---|")
    for stage in rows[0]["stage_seconds"]:
        xs = [r["stage_seconds"].get(stage, 0) for r in rows]
        print(f"| {stage} | {statistics.mean(xs):.1f} | {max(xs):.1f} |")
    tot = [r["wall_seconds"] for r in rows]
    print(f"| demo wall time | {statistics.mean(tot):.1f} | {max(tot):.1f} |")


def sd(xs):
    return statistics.stdev(xs) if len(xs) > 1 else 0.0


def seeds_of(rows):
    return [r["settings"]["seed"] for r in rows]


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--output_dir", default="runs/bench-demo")
    a, extra = ap.parse_known_args()
    summarize(run(a.seeds, a.output_dir, extra))
