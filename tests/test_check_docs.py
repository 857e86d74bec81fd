"""tools/check_docs.py: each finding kind on small synthetic notebooks; a clean notebook passes."""
import base64
import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_docs", ROOT / "tools" / "check_docs.py")
cd = sys.modules["check_docs"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cd)

PNG = base64.b64encode(base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")).decode()
TQDM = "Map: 100%|##########| 4/4 [00:00<00:00, 642.53 examples/s]\n"


def stream(text, name="stdout"): return new_output("stream", name=name, text=text)
def image(): return new_output("display_data", data={"image/png": PNG, "text/plain": "<Figure>"})
def result(text): return new_output("execute_result", data={"text/plain": text}, execution_count=1)


def clean_cells():
    return [
        new_markdown_cell("# Clean page\n\n> A page with nothing to report."),
        new_markdown_cell(r"The reward $R = \bar L / L - 1$ and $$\hat R = (R - \mu)/\sigma.$$ See ![a plot](p.png)."),
        new_code_cell("x = 1\nprint('wrote runs/toy/analysis; docs at https://example.org/home/tmp/x')",
                      outputs=[stream("wrote runs/toy/analysis; docs at https://example.org/home/tmp/x\n")]),
        new_code_cell("#| fig-alt: A bar chart of accuracy by length quartile\nshow()", outputs=[image()]),
        new_code_cell("warn()", outputs=[stream("UserWarning: 2 rows could not be mapped\n", "stderr")]),
        new_code_cell("#| hide\n" + "y = 2  # " + "z" * 130, outputs=[stream("/tmp/hidden " + TQDM)]),
        new_code_cell("#| echo: false\n" + "z = 3  # " + "z" * 130, outputs=[result("3")]),
    ]


def bad_cells():
    return [
        new_markdown_cell("# Bad page"),                                                             # 0
        new_code_cell("1/0", outputs=[new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                                                 traceback=["ZeroDivisionError: division by zero"])]),  # 1
        new_code_cell("run()", outputs=[stream("Traceback (most recent call last):\n  File x\nValueError\n")]),  # 2
        new_code_cell("load()", outputs=[stream(
            "/venv/lib/python3.11/site-packages/transformers/modeling_utils.py:3312: FutureWarning: "
            "`x` is deprecated\n", "stderr")]),                                                          # 3
        new_code_cell("f()", outputs=[stream("<ipython-input-9-819c68178c18>:23: UserWarning: 1 problem skipped\n",
                                             "stderr")]),                                            # 4
        new_code_cell("g()", outputs=[stream("Loading weights:   0%|          | 0/38 [00:00<?, ?it/s]\n" + TQDM,
                                             "stderr")]),                                            # 5
        new_code_cell("h()", outputs=[stream("wrote /tmp/tmpab12/out and /root/.cache/x\n")]),       # 6
        new_code_cell("plot()", outputs=[image()]),                                                  # 7
        new_markdown_cell("A figure: ![](plot.png)"),                                                # 8
        new_code_cell("x = " + "1 + " * 40 + "1"),                                                   # 9
        new_code_cell("#| export\ndef f(a):\n    return " + "a + " * 40 + "a"),                     # 10
        new_code_cell("#| fig-alt: [one figure]\nshow2()", outputs=[image(), image()]),              # 11
        new_code_cell("w()", outputs=[stream("/work/main/o1_pruner/data.py:193: UserWarning: rows skipped\n",
                                             "stderr")]),                                            # 12
    ]


EXPECTED = {(1, "error"), (2, "traceback"), (3, "warning"), (4, "warning-prefix"), (5, "progress-bar"), (6, "path"),
            (7, "image-alt"), (8, "image-alt"), (9, "long-line"), (10, "long-line"), (11, "image-alt"),
            (12, "warning-prefix")}


def test_clean_notebook_has_no_findings():
    nb = new_notebook(cells=clean_cells())
    found, where = cd.check_page("clean", nb, nb)
    assert found == []
    assert where == list(range(len(nb.cells)))


def test_each_finding_kind_is_detected():
    nb = new_notebook(cells=bad_cells())
    found, _ = cd.check_page("bad", nb, nb)
    assert {(f.cell, f.kind) for f in found} == EXPECTED
    assert all(f.page == "bad" for f in found)
    assert "it/s" in next(f.what for f in found if f.kind == "progress-bar")
    assert "1 of 2" in next(f.what for f in found if f.cell == 11)


def test_paths_and_warnings_classified():
    assert cd.find_path("see https://host.org/home/x and runs/toy/samples") is None
    assert cd.find_path("model in /home/me/ckpt.") == "/home/me/ckpt"
    assert cd.find_path("import from .venv/lib/python3.11/x") is not None
    assert cd.classify_warning("UserWarning: 3 rows skipped") is None
    assert cd.classify_warning("UserWarning: skipped 2 rows of torch.json") is None
    assert cd.classify_warning("FutureWarning: `torch.cuda.amp` is deprecated")[0] == "warning"
    assert cd.classify_warning("/x/o1_pruner/reward.py:115: UserWarning: equal rewards")[0] == "warning-prefix"


def test_cell_options_and_math_count():
    opts = cd.cell_options("#| export\n#| fig-alt:\n#|   - first\n#|   - second\n#| echo: false\nx = 1\n#| later: 1")
    assert opts == {"export": None, "fig-alt": ["first", "second"], "echo": False}
    assert cd.count_math(r"$a$, $$b$$, \(c\), costs `$x$` in code, and $5 or $ 6 $") == 3


def _project(tmp_path, pages):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "toyproj"\nversion = "0.0.1"\n\n'
                                             '[tool.nbdev]\nnbs_path = "nbs"\nlib_path = "toyproj"\n')
    (tmp_path / "toyproj").mkdir()
    (tmp_path / "nbs").mkdir()
    for name, cells in pages.items(): nbformat.write(new_notebook(cells=cells), tmp_path / "nbs" / f"{name}.ipynb")
    return tmp_path


def test_main_processes_with_nbdev_and_names_source_cells(tmp_path, monkeypatch, capsys):
    broken = [new_markdown_cell("# Broken"), new_code_cell("#| export\nraise ValueError('boom')")]
    proj = _project(tmp_path, {"clean": clean_cells(), "bad": bad_cells(), "broken": broken})
    monkeypatch.chdir(proj)
    out = proj / "_check"
    assert cd.main(["--nbs", str(proj / "nbs"), "--out", str(out), "--no-browser", "--pages", "clean"]) == 0
    assert cd.main(["--nbs", str(proj / "nbs"), "--out", str(out), "--no-browser"]) == 1
    lines = (out / "findings.txt").read_text().splitlines()
    (fail,) = [l for l in lines if l.startswith("broken ")]
    assert fail.startswith("broken page: render: nbdev processing failed: ") and fail.endswith("ValueError: boom")
    lines = [l for l in lines if not l.startswith("broken ")]
    assert lines and all(l.startswith("bad cell ") for l in lines)
    # nbdev drops the export cell (10) and the `#| hide` cell from the page; the rest keep their source numbers
    assert {(int(l.split()[2].rstrip(":")), l.split()[3].rstrip(":")) for l in lines} == EXPECTED
    assert "docs check: FAIL" in capsys.readouterr().out


BROWSER = cd.find_chromium(None)
MATHJAX = ROOT / "_docs_check" / cd.MATHJAX_REL


@pytest.mark.skipif(not (BROWSER and MATHJAX.exists()), reason="needs chromium and _docs_check/.cache MathJax")
def test_browser_renders_math_and_screenshots(tmp_path, monkeypatch):
    proj = _project(tmp_path, {
        "clean": clean_cells(),
        "badmath": [new_markdown_cell("# Bad math"),
                    new_markdown_cell(r"Undefined $\foo x$ and a missing argument $\frac{1}$."),
                    new_markdown_cell(r"An unclosed display $$x + y and the end.")],
        "empty": []})
    monkeypatch.chdir(proj)
    out = proj / "_check"
    assert cd.main(["--nbs", str(proj / "nbs"), "--out", str(out), "--mathjax", str(MATHJAX)]) == 1
    lines = (out / "findings.txt").read_text().splitlines()
    assert not [l for l in lines if l.startswith("clean ")]
    math = [l for l in lines if l.startswith("badmath cell ")]
    assert any("cell 1: math: MathJax error" in l and "foo" in l for l in math)
    assert any("cell 1: math: MathJax error" in l and "frac" in l for l in math)
    assert any("cell 2: math: raw TeX" in l for l in math)
    assert any(l.startswith("empty page: render: empty page body") for l in lines)
    png = out / "screenshots" / "clean.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
