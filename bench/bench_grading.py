"""Throughput of grade_batch over realistic (response, gold) pairs built from the real benchmark answers.

Usage: python bench/bench_grading.py [--n 6000] [--workers 1 2]"""
from __future__ import annotations

import argparse
import random
import re
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    a = ap.parse_args()
    for label, k in (("sample-store-like (16 samples per problem)", 16), ("all distinct problems (worst case)", 1)):
        pairs, n_golds = build_pairs(a.n, k=k)
        mean_len = sum(len(r) for r, _ in pairs) / len(pairs)
        print(f"[{label}] {len(pairs)} pairs, golds drawn from {n_golds} real answers; mean response {mean_len:.0f} chars")
        for w in a.workers:
            G._parse.cache_clear(); G._match.cache_clear()   # no warm cache carried from the previous run (workers are forked)
            t0 = time.perf_counter()
            out = grade_batch(pairs, n_workers=w, timeout=5.0, progress=False)
            dt = time.perf_counter() - t0
            reasons = {}
            for g in out: reasons[g.reason] = reasons.get(g.reason, 0) + 1
            print(f"  n_workers={w}: {len(pairs) / dt:8.1f} items/s  ({dt:.2f}s, accuracy "
                  f"{sum(g.correct for g in out) / len(out):.3f}, reasons {reasons})", flush=True)

if __name__ == "__main__":
    main()
