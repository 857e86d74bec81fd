"""CI's lint of the package: unused imports, redefinitions and lines over 120 characters (ruff F401, F811, E501).

Two kinds of line are nbdev's own output, not ours, and are left out: `_modidx.py` and the `__init__.py` docstring
(the module list nbdev-export assembles from the modules' summaries), and the first line of each `__all__` (nbdev
wraps the list at 120 characters without counting the `__all__ = ` before it). Everything else fails the check.

usage: python tools/lint.py    (exit 1 and one line per finding if any)
"""
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RULES = "F401,F811,E501"


def generated(finding: dict) -> bool:
    "Whether a finding is on a line nbdev writes itself."
    path = Path(finding["filename"])
    if path.name in ("_modidx.py", "__init__.py"): return True
    if finding["code"] != "E501": return False
    line = path.read_text().splitlines()[finding["location"]["row"] - 1]
    return line.startswith("__all__ = [")


def main() -> int:
    p = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", RULES, "--line-length", "120",
                        "--output-format", "json", str(REPO / "o1_pruner")], capture_output=True, text=True)
    if p.returncode not in (0, 1): print(p.stderr, file=sys.stderr); return 2
    found = [f for f in json.loads(p.stdout or "[]") if not generated(f)]
    for f in found:
        print(f"{Path(f['filename']).relative_to(REPO)}:{f['location']['row']}: {f['code']} {f['message']}")
    print(f"lint: {len(found)} finding(s) ({RULES}, lines <= 120) in o1_pruner/")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
