"""Throughput of grade_batch over realistic (response, gold) pairs built from the real benchmark answers.

Usage: python bench/bench_grading.py [--n 6000] [--workers 1 2] [--repeat 3] [--grading old_grading.py '']

Besides wall-clock items/s, each run reports its CPU time (this process and its workers) and
n / (CPU seconds / workers): the rate if the workers had their cores to themselves, which a shared
machine's wall clock does not show."""
from __future__ import annotations

import argparse
import json
import random
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _golds import all_golds  # noqa: E402
from o1_pruner import grading as G  # noqa: E402
from o1_pruner.grading import grade_batch  # noqa: E402

FILLER = ("Let me think about this step by step. First, I set up the equations from the problem statement "
          "and simplify: $x + y = 10$, $2x - y = 2$, so $3x = 12$ and $x = 4$. Wait, let me double-check the "
          "arithmetic before going on; substituting back gives $y = 6$, which is consistent. ")


def wrong_variant(gold: str, rng: random.Random, pool: list[str]) -> str:
    """A plausible wrong answer, like a model's: an integer off by a little; else the gold with one number changed
    (a slip in the last step) or another answer to a problem of the same benchmark (same kind of object)."""
    try: return str(int(gold.replace(",", "")) + rng.choice([-2, -1, 1, 3, 10]))
    except ValueError: pass
    nums = list(re.finditer(r"\d+", gold))
    if nums and rng.random() < 0.5:
        m = rng.choice(nums)
        return gold[:m.start()] + str(int(m.group()) + rng.choice([1, 2, 3])) + gold[m.end():]
    return rng.choice(pool)


def right_variant(gold: str, rng: random.Random) -> str:
    g = gold.strip().strip("$")
    return rng.choice([g, g.replace("\\frac", "\\dfrac"), f"{g}"])


def _response(ans: str, rng: random.Random) -> str:
    body = FILLER * rng.randint(2, 12)
    tail = rng.choice([f"Therefore the answer is $\\boxed{{{ans}}}$.", f"\\[\\boxed{{{ans}}}\\]",
                       f"So my first guess \\boxed{{0}} was wrong; the final answer is $\\boxed{{{ans}}}$."])
    return body + tail


def build_pairs(n: int, seed: int = 0, k: int = 1):
    """`n` pairs; with `k` > 1, like a sample store: n/k problems x k samples, each sample's answer drawn from
    the problem's correct answer (60%, in several spellings) or one of two wrong candidates."""
    by_file = all_golds()
    golds = [g for gs in by_file.values() for g in gs]
    files = list(by_file)
    rng = random.Random(seed)
    pairs = []
    for i in range(0, n, k):   # round-robin over files so LaTeX-heavy sets (MATH, GaoKao) weigh as much as GSM8K
        pool = by_file[files[(i // k) % len(files)]]
        gold = rng.choice(pool)
        wrongs = [wrong_variant(gold, rng, pool) for _ in range(2)]
        for _ in range(min(k, n - i)):
            ans = right_variant(gold, rng) if rng.random() < 0.6 else rng.choice(wrongs)
            pairs.append((_response(ans, rng), gold))
    return pairs, len(golds)


def _load_grading(path):
    "The grading module: the package's, or another copy of grading.py (for before/after comparisons)."
    if not path: return G
    import importlib.util
    spec = importlib.util.spec_from_file_location("grading_under_test", path)
    mod = importlib.util.module_from_spec(spec); sys.modules["grading_under_test"] = mod; spec.loader.exec_module(mod)
    return mod


def one(n: int, k: int, w: int, grading: str | None) -> dict:
    "Grade the pairs once in this (fresh) process and return throughput and outcomes."
    M = _load_grading(grading)
    pairs, _ = build_pairs(n, k=k)
    r0, c0, t0 = resource.getrusage(resource.RUSAGE_CHILDREN), time.process_time(), time.perf_counter()
    out = M.grade_batch(pairs, n_workers=w, timeout=5.0, progress=False)
    dt = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = time.process_time() - c0 + (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)   # with its workers
    reasons = {}
    for g in out: reasons[g.reason] = reasons.get(g.reason, 0) + 1
    return dict(rate=len(pairs) / dt, dt=dt, cpu=cpu, cpu_rate=len(pairs) / (cpu / w),
                acc=sum(g.correct for g in out) / len(out), reasons=reasons)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeat", type=int, default=1, help="best of this many runs, interleaved")
    ap.add_argument("--grading", nargs="+", default=[""], help="grading.py files to compare ('' = the package's)")
    ap.add_argument("--one", nargs=3, type=int, help=argparse.SUPPRESS)   # n k workers: one run, JSON out
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(*a.one, a.grading[0] or None))); return
    # Every run is a fresh interpreter: the LaTeX parser (ANTLR) caches its prediction tables as it goes,
    # so a process that graded before would be measured warm.
    for label, k in (("sample-store-like (16 samples per problem)", 16), ("all distinct problems (worst case)", 1)):
        pairs, n_golds = build_pairs(a.n, k=k)
        mean_len = sum(len(r) for r, _ in pairs) / len(pairs)
        print(f"[{label}] {len(pairs)} pairs, golds drawn from {n_golds} real answers; mean response {mean_len:.0f} chars")
        best = {}
        for _ in range(a.repeat):
            for gr in a.grading:
                for w in a.workers:
                    cmd = [sys.executable, __file__, "--one", str(a.n), str(k), str(w), "--grading", gr]
                    r = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
                    if (gr, w) not in best or r["rate"] > best[(gr, w)]["rate"]: best[(gr, w)] = r
        for (gr, w), r in best.items():
            print(f"  {gr or 'o1_pruner.grading'} n_workers={w}: {r['rate']:8.1f} items/s  (best of {a.repeat}; "
                  f"{r['dt']:.2f}s; CPU {r['cpu']:.1f}s, {r['cpu_rate']:.0f} items/s if {w} core(s) were free; "
                  f"accuracy {r['acc']:.3f}, reasons {r['reasons']})", flush=True)

if __name__ == "__main__":
    main()
