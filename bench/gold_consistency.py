"""Every gold answer in /work/shared/data graded against itself and common re-formattings (>= 99% should pass).

Usage: python bench/gold_consistency.py [--workers 2] [--show 40]"""
from __future__ import annotations

import argparse
import re
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _golds import all_golds  # noqa: E402
from o1_pruner.grading import grade_batch  # noqa: E402


def variants(g: str) -> list[tuple[str, str]]:
    "(kind, response answer) re-formattings of gold `g` that must be judged equal to it."
    out = [("self", g)]
    core = g.strip()
    if core.startswith("$") and core.endswith("$"): core = core.strip("$").strip()
    else: out.append(("dollars", f"${g}$"))
    if core != g: out.append(("unwrapped", core))
    if "\\frac" in core: out.append(("dfrac", core.replace("\\frac", "\\dfrac")))
    m = re.fullmatch(r"(-?)\\frac\{(\d+)\}\{(\d+)\}", core)
    if m and int(m.group(3)) > 0:
        f = Fraction(int(m.group(2)), int(m.group(3)))
        d = f.denominator
        while d % 2 == 0: d //= 2
        while d % 5 == 0: d //= 5
        if d == 1: out.append(("decimal", m.group(1) + str(Decimal(f.numerator) / Decimal(f.denominator))))
    if re.fullmatch(r"-?\d+", core):
        if abs(int(core)) >= 1000: out.append(("thousands", f"{int(core):,}"))
        out.append(("units", f"{core}\\text{{ cm}}"))
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+", core): out.append(("no-thousands", core.replace(",", "")))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--show", type=int, default=60)
    a = ap.parse_args()
    rows = []
    for fname, golds in all_golds().items():
        for g in golds:
            for kind, v in variants(g): rows.append((fname, kind, g, v))
    print(f"{len(rows)} (gold, re-formatted gold) pairs")
    out = grade_batch([f"Reasoning ... so the answer is $\\boxed{{{v}}}$." for *_, v in rows], [r[2] for r in rows],
                      n_workers=a.workers, timeout=10.0, progress=False)
    per_file, per_kind, fails = {}, {}, []
    for (fname, kind, g, v), res in zip(rows, out):
        for d, key in ((per_file, fname), (per_kind, kind)):
            n, c = d.get(key, (0, 0)); d[key] = (n + 1, c + res.correct)
        if not res.correct: fails.append((fname, kind, g, v, res.reason))
    print("\nper file:")
    for k, (n, c) in per_file.items(): print(f"  {k:<40} {c:6d}/{n:<6d} {c / n:.4%}")
    print("per re-formatting:")
    for k, (n, c) in per_kind.items(): print(f"  {k:<14} {c:6d}/{n:<6d} {c / n:.4%}")
    tot, ok = len(rows), sum(r.correct for r in out)
    print(f"overall {ok}/{tot} = {ok / tot:.4%}")
    print(f"\n{len(fails)} failures (first {a.show}):")
    for f in fails[:a.show]: print("  ", f)


if __name__ == "__main__":
    main()
