"""Gold answers of every benchmark file in /work/shared/data (shared by the grading benchmarks)."""
from __future__ import annotations

import json
from pathlib import Path

from o1_pruner.data import find_boxed

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _rows(path: Path):
    if path.suffix == ".json": return json.loads(path.read_text())
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()]


def gold_of(path: Path, r: dict):
    "The gold answer string of one row, by the conventions of its file."
    if "ground_truth_answer" in r: return str(r["ground_truth_answer"])
    if path.parent.name == "gsm8k": return r["answer"].split("####")[-1].strip()
    if "answer" in r:
        a = r["answer"]
        return str(int(a)) if isinstance(a, float) and a.is_integer() else str(a)
    if "solution" in r: return find_boxed(r["solution"])
    return None


def all_golds(shared: Path = SHARED) -> dict[str, list[str]]:
    "file name -> list of gold answers, for every benchmark file."
    out = {}
    for p in sorted(shared.rglob("*.json*")):
        golds = [gold_of(p, r) for r in _rows(p)]
        out[str(p.relative_to(shared))] = [g for g in golds if g]
    return out
