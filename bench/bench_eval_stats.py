"""Cost of the evaluation report's statistics (bootstrap intervals, paired tests, pass@k, maj@k, budget curves) at
the field's benchmark sizes, on synthetic stores written by the store's own writer (no model, no generation).

For each (problems, n) it writes a run folder with a base and a pruned model, then times `report_from_stores`
without plots (statistics, tables, metrics.json, report.md), and once with plots.

Run it from another checkout (copy this file into its bench/) to compare with a version without the statistics.

Usage: python bench/bench_eval_stats.py [--sizes 500x16 1319x1 1319x16 30x64] [--n_boot 2000] [--out FILE]"""
from __future__ import annotations

import argparse
import inspect
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from o1_pruner import evaluate as ev  # noqa: E402
from o1_pruner.testing import write_store  # noqa: E402


def make_run(root: Path, problems: int, n: int, seed: int = 0) -> Path:
    "A run folder: base and pruned stores on one test set (pruned ~35% shorter, same solve rates)."
    rng = np.random.default_rng(seed)
    p = rng.beta(1.5, 1.0, size=problems)
    length = rng.lognormal(7.0, 0.6, size=problems)
    protocol = ev.protocol_name(n, 0.6 if n > 1 else 0.0, 0.95)
    for model, shrink in (("base", 1.0), ("pruned", 0.65)):
        recs = []
        for i in range(problems):
            for j in range(n):
                ok = bool(rng.random() < p[i])
                tok = int(min(8192, length[i] * shrink * rng.lognormal(0, 0.25)))
                think = int(tok * 0.85)
                recs.append(dict(problem_id=f"p{i:05d}", sample_idx=j, problem="x", gold="42", prompt="p",
                                 completion="c", num_tokens=tok, thinking_tokens=think,
                                 finish_reason="length" if tok >= 8192 else "stop",
                                 extracted="42" if ok else str(rng.integers(0, 5)), correct=ok, grade_reason="ok"))
        spec = {"sampling": {"max_tokens": 8192, "temperature": 0.6, "top_p": 0.95, "seed": 0}, "model": model}
        write_store(root / "stores" / model / "bench" / protocol, recs, spec)
    return root


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["500x16", "1319x1", "1319x16", "30x64"])
    ap.add_argument("--n_boot", type=int, default=2000)
    ap.add_argument("--out", default=None, help="also write the markdown table to this file")
    a = ap.parse_args(argv)
    kw = {"n_boot": a.n_boot} if "n_boot" in inspect.signature(ev.report_from_stores).parameters else {}
    rows = ["| problems x n | samples | report, no plots (s) | with plots (s) |", "|---|---|---|---|"]
    for size in a.sizes:
        problems, n = map(int, size.split("x"))
        with tempfile.TemporaryDirectory() as d:
            run = make_run(Path(d) / "run", problems, n)
            t = time.perf_counter()
            ev.report_from_stores(run, base="base", plots=False, **kw)
            no_plots = time.perf_counter() - t
            t = time.perf_counter()
            ev.report_from_stores(run, base="base", plots=True, **kw)
            with_plots = time.perf_counter() - t
        rows.append(f"| {problems} x {n} | {2 * problems * n} | {no_plots:.1f} | {with_plots:.1f} |")
        print(rows[-1], flush=True)
    table = "\n".join(rows)
    print(table)
    if a.out: Path(a.out).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
