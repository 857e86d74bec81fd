"""Structure figures of the package (issue 13's before/after): modules, lines, the largest export cell, functions over
60 lines, lines over 120 characters, package-internal imports inside functions, import circles.

usage: python tools/structure_stats.py [--repo DIR] [--check]
  --check: exit 1 (one line per problem) on an import circle among o1_pruner modules (CI runs this).
"""
import argparse
import ast
import json
import sys
from pathlib import Path


def module_imports(path:Path, pkg:str="o1_pruner") -> tuple[set[str], int]:
    "(o1_pruner modules that `path` imports anywhere, how many of those imports sit inside functions)."
    tree, out, inner = ast.parse(path.read_text()), set(), 0
    parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level: base = f"{pkg}.{base}" if base else pkg
            if base == pkg: names = [f"{pkg}.{a.name}" for a in node.names]
            elif base.startswith(pkg + "."): names = [base]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith(pkg + ".")]
        names = [n.split(".")[1] for n in names if len(n.split(".")) > 1]
        if not names: continue
        out.update(names)
        p = parents.get(node)
        while p is not None and not isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef)): p = parents.get(p)
        if p is not None: inner += 1
    return out, inner


def circles(graph:dict[str, set[str]]) -> list[list[str]]:
    "Strongly connected components with more than one module (Tarjan)."
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]
    def visit(v):
        index[v] = low[v] = n[0]; n[0] += 1; stack.append(v); on.add(v)
        for w in graph.get(v, ()):
            if w not in graph: continue
            if w not in index: visit(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(sorted(comp))
    for v in sorted(graph):
        if v not in index: visit(v)
    return out


def export_cells(nbs:Path) -> list[tuple[int, int, str]]:
    "(lines, definitions, notebook) of every `#| export` cell."
    out = []
    for nb in sorted(nbs.glob("*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            src = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            if cell["cell_type"] == "code" and src.lstrip().startswith("#| export"):
                try: defs = sum(isinstance(n, (ast.FunctionDef, ast.ClassDef)) for n in ast.parse(src).body)
                except SyntaxError: defs = -1
                out.append((len(src.splitlines()), defs, nb.name))
    return out


def stats(repo:Path) -> dict:
    mods = sorted(p for p in (repo / "o1_pruner").glob("*.py") if p.name not in ("_modidx.py", "__init__.py"))
    graph, inner, long_fns, long_lines, lines = {}, 0, [], 0, 0
    for p in mods:
        text = p.read_text()
        lines += len(text.splitlines())
        long_lines += sum(len(line) > 120 for line in text.splitlines())
        graph[p.stem], k = module_imports(p)
        graph[p.stem].discard(p.stem)
        inner += k
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > 60:
                long_fns.append(f"{p.name}:{node.name} ({node.end_lineno - node.lineno + 1})")
    cells = export_cells(repo / "nbs")
    big = max(cells, default=(0, 0, ""))
    return {"modules": len(mods), "lines": lines, "largest_export_cell": f"{big[0]} lines, {big[1]} definitions ({big[2]})",
            "export_cells_with_several_definitions": sum(d > 1 for _, d, _ in cells),
            "functions_over_60_lines": long_fns, "lines_over_120": long_lines,
            "package_imports_inside_functions": inner, "import_circles": circles(graph)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repo", default=".")
    ap.add_argument("--check", action="store_true")
    a = ap.parse_args()
    s = stats(Path(a.repo))
    if a.check:
        for c in s["import_circles"]: print(f"import circle among o1_pruner modules: {' -> '.join(c + c[:1])}")
        sys.exit(1 if s["import_circles"] else 0)
    print(json.dumps(s, indent=1))


if __name__ == "__main__":
    main()
