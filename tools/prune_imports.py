"""Drop the imports that ruff reports unused (F401) in an exported module from its notebook's export cells.

usage: python tools/prune_imports.py [o1_pruner/x.py ...]   (default: every exported module)
Then run `nbdev-export` and the notebook's tests: a name that only a notebook's example cells use needs an import in a
(hidden) example cell of its own.
"""
import ast
import json
import subprocess
import sys
from pathlib import Path


def unused(module:Path) -> set[str]:
    "Names ruff reports as unused imports in `module`."
    p = subprocess.run([sys.executable, "-m", "ruff", "check", "--select", "F401", "--output-format", "json", str(module)],
                       capture_output=True, text=True)
    return {m["message"].split("`")[1].split(".")[-1] if " as " not in m["message"] else
            m["message"].split("`")[1].split(" as ")[-1] for m in json.loads(p.stdout or "[]")}


def _statement(node, keep:list) -> str:
    "Source of `node` (an import) keeping only `keep` aliases, wrapped at 120 characters."
    names = [a.name + (f" as {a.asname}" if a.asname else "") for a in keep]
    if isinstance(node, ast.Import): return "\n".join(f"import {n}" for n in names)
    head = f"from {'.' * node.level}{node.module or ''} import "
    one = head + ", ".join(names)
    if len(one) <= 120: return one
    lines, cur = [], head + "("
    for n in names:
        piece = n + ", "
        if len(cur) + len(piece) > 119: lines.append(cur.rstrip()); cur = " " * len(head + "(")
        cur += piece
    return "\n".join(lines + [cur.rstrip(", ") + ")"])


def prune_cell(src:str, drop:set[str]) -> str:
    "The cell source without the imported names in `drop` (whole statements removed when nothing is left)."
    tree, lines = ast.parse(src), src.split("\n")
    for node in reversed([n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]):
        keep = [a for a in node.names if (a.asname or a.name).split(".")[0] not in drop and a.name not in drop]
        if len(keep) == len(node.names): continue
        new = _statement(node, keep).split("\n") if keep else []
        lines[node.lineno - 1:node.end_lineno] = new
    return "\n".join(lines)


def main(modules):
    for mod in modules or sorted(Path("o1_pruner").glob("*.py")):
        mod = Path(mod)
        head = mod.read_text().split("\n")[:8]
        nb = next((line.split("File to edit: ../")[1].rstrip(".") for line in head if "File to edit:" in line), None)
        drop = unused(mod)
        if not nb or not drop: continue
        nbp = Path(nb)
        doc = json.loads(nbp.read_text())
        for c in doc["cells"]:
            src = "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
            if c["cell_type"] == "code" and src.lstrip().startswith("#| export"):
                new = prune_cell(src, drop)
                if new != src: c["source"] = new.splitlines(keepends=True)
        nbp.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        print(f"{nbp}: dropped {sorted(drop)}")


if __name__ == "__main__":
    main(sys.argv[1:])
