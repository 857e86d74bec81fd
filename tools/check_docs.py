"""Check the docs pages as a reader sees them, without Quarto.

Runs nbdev's docs processing (`nbdev.serve.proc_nbs` into `_proc/`), checks each processed page's shown cells
and saved outputs, renders each page to standalone HTML with nbconvert (MathJax 3 from a local copy, so math
renders offline), opens it in headless Chromium, checks that the math rendered and keeps a full-page PNG.

Fails (exit 1, one line per finding: page, cell, kind, what) on:
  render        nbconvert or Chromium failed, or the page body is empty
  error         an error output (exception) saved in a cell
  traceback     a traceback printed in a saved output
  warning       a third-party warning (from site-packages or naming a third-party module)
  warning-prefix  the project's own warning shown with an `<ipython-input-...>` or file-path prefix
  progress-bar  a progress-bar fragment (tqdm `NN%|`, `|###|`, `[00:01<00:02`, `it/s`, `s/it`, `examples/s`)
  path          a local filesystem path (/tmp/, /work/, /root/, /home/, site-packages, a venv, this checkout)
  image-alt     a markdown image with empty alt text, or an image output in a cell without `#| fig-alt:`
  long-line     a code line over 120 characters in a shown cell (or in an `#| export` cell's source)
  math          a formula that MathJax left as raw TeX, reported as an error, or did not render

Cells are numbered as in the source notebook `nbs/<page>.ipynb` (0-based, like nbformat and nbdev's messages);
cells that nbdev adds (the `show_doc` of an exported name) carry the number of the cell that defines the name.
Alt text for a figure: give the cell a Quarto option `#| fig-alt: what the figure shows` (a one-line list
`["...", "..."]`, one entry per image, for a cell that shows several; nbdev reads indented `#|` lines as directives).

usage: python tools/check_docs.py [--pages 06_difficulty ...] [--out DIR] [--no-screenshots] [--no-browser]
Needs Chromium (`apt-get install chromium`, or --chromium PATH) and MathJax 3 under the artifact folder
(`npm install --prefix _docs_check/.cache/mathjax mathjax@3`, or --mathjax PATH to tex-chtml-full.js).
"""
from __future__ import annotations

import argparse
import base64
import copy
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
MAX_LINE = 120
WIDTH = 1280
MATHJAX_REL = Path(".cache/mathjax/node_modules/mathjax/es5/tex-chtml-full.js")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--allow-file-access-from-files", "--hide-scrollbars", "--mute-audio"]


@dataclass
class Finding:
    page: str
    cell: int | str | None  # source cell index; "p<k>" for a processed cell that maps to no source cell
    kind: str
    what: str

    def __str__(self):
        where = "page" if self.cell is None else f"cell {self.cell}"
        return f"{self.page} {where}: {self.kind}: {self.what}"


# ---------------------------------------------------------------- cell options and the page/source mapping

_DIRECTIVE = re.compile(r"^\s*#\|")


def cell_options(source: str) -> dict:
    """Quarto/nbdev `#|` options at the top of a cell: `{"fig-alt": "...", "export": None, ...}`."""
    opts, key, block = {}, None, []

    def flush():
        if key is None: return
        text = (block[0].strip() + "\n" + textwrap.dedent("\n".join(block[1:]))).strip()
        try: opts[key] = yaml.safe_load(text) if text else None
        except yaml.YAMLError: opts[key] = text

    for line in source.splitlines():
        if not _DIRECTIVE.match(line):
            if line.strip(): break
            continue
        body = _DIRECTIVE.sub("", line, count=1)
        m = re.match(r"\s*([A-Za-z_][\w-]*)\s*:(.*)$", body)
        if m and not body.startswith("  "):
            flush(); key, block = m.group(1), [m.group(2)]
        elif body.startswith("  ") and key is not None: block.append(body)
        else:
            flush(); key, block = None, []
            for word in body.split(): opts[word] = None
    flush()
    return opts


def _false(v) -> bool: return v is False or str(v).lower() == "false"


_NBDEV_HIDDEN = {"hide", "export", "exporti", "default_exp"}  # nbdev drops these cells from the page


def _hidden(opts: dict, option: str) -> bool:
    return bool(_NBDEV_HIDDEN & set(opts)) or _false(opts.get("include", True)) or _false(opts.get(option, True))


def shown_source(cell) -> list[str]:
    """The code lines a reader sees: none for hidden cells, no directive lines."""
    if _hidden(cell_options(cell.source), "echo"): return []
    return [l for l in cell.source.splitlines() if not _DIRECTIVE.match(l)]


def shown_outputs(cell) -> list:
    return [] if _hidden(cell_options(cell.source), "output") else cell.get("outputs", [])


def _norm(cell) -> str:
    text = "\n".join(l for l in cell.source.splitlines() if not _DIRECTIVE.match(l) and not l.lstrip().startswith("%"))
    if cell.cell_type == "markdown": text = re.sub(r"\]\([^)]*\)", "]", text).replace("[", "").replace("]", "")
    return re.sub(r"\s+", "", text)


def map_cells(src_nb, page_nb) -> list[int | str]:
    """For each processed page cell, the index of the source cell it came from (`p<k>` when none is found)."""
    src = src_nb.cells
    keys = [(c.cell_type, _norm(c)) for c in src]
    out, j = [], 0
    for k, cell in enumerate(page_nb.cells):
        key = (cell.cell_type, _norm(cell))
        hit = next((i for i in range(j, len(src)) if keys[i] == key), None)
        if hit is not None:
            out.append(hit); j = hit + 1; continue
        if cell.cell_type == "raw" and cell.source.lstrip().startswith("---"):  # the title, moved into frontmatter
            hit = next((i for i, c in enumerate(src) if c.cell_type == "markdown" and c.source.startswith("# ")), None)
            out.append(hit if hit is not None else f"p{k}"); continue
        m = re.search(r"show_doc\(([\w.]+)\)", cell.source) if cell.cell_type == "code" else None
        if m:
            parts = m.group(1).split(".")
            nm = re.escape(parts[-1])
            pat = re.compile(rf"^\s*(?:async\s+def|def|class)\s+{nm}\b|^{nm}\s*=", re.M)
            hit = next((i for i, c in enumerate(src) if c.cell_type == "code" and pat.search(c.source)), None)
            if hit is None and len(parts) > 1:
                pat = re.compile(rf"^\s*class\s+{re.escape(parts[0])}\b", re.M)
                hit = next((i for i, c in enumerate(src) if c.cell_type == "code" and pat.search(c.source)), None)
        out.append(hit if hit is not None else f"p{k}")
    return out


# ---------------------------------------------------------------- saved-output checks

# tqdm fragments: 42%|, |####|, [00:01<00:02, [00:01, 3.2it/s, 2.1s/it, 640 examples/s
_PROGRESS = re.compile(r"\d{1,3}%\||\|(?=[#█▏▎▍▌▋▊▉ ]{4,}\|)[#█▏▎▍▌▋▊▉]|\[\d+:\d\d(?:<|, )"
                       r"|(?:\d|\?)\s?it/s\b|\ds/it\b|\bexamples/s\b")
_WARNING = re.compile(r"^(?P<prefix>.*?)\b(?P<cat>[A-Z]\w*Warning): (?P<msg>.*)$")
_WARN_PREFIX = re.compile(r"(?P<file>.+?):(?P<line>\d+):\s*$")
_IPYTHON_FILE = re.compile(r"<ipython-input-[\w-]+>|/ipykernel_\d+/\d+\.py|<cell line: \d+>")


def _machine_paths() -> list[str]:
    paths = {str(ROOT), sys.prefix, tempfile.gettempdir(), str(Path.home())}
    return sorted((p.rstrip("/") + "/" for p in paths if p not in ("", "/")), key=len, reverse=True)


_PATH = re.compile(r"(?<![\w.:/~-])/(?:tmp|work|root|home|Users|var/folders|private/var|mnt|srv)/[^\s'\"`,;)\]]*"
                   r"|[A-Za-z]:\\(?:Users|tmp|Temp)\\\S*|\S*(?:site-packages|dist-packages)\S*"
                   r"|(?<![\w-])\.?venv[\w-]*/(?:lib|bin)/\S*")


_URL = re.compile(r"\b[A-Za-z][\w+.-]*://\S+")


def find_path(text: str) -> str | None:
    """The first local filesystem path in `text` (URLs and relative paths like `runs/toy/x` are not paths)."""
    text = _URL.sub(" ", text)
    m = _PATH.search(text)
    if m: return m.group(0).rstrip(".:")
    for p in _machine_paths():
        m = re.search(rf"(?<![\w.:/~-]){re.escape(p)}\S*", text)
        if m: return m.group(0).rstrip(".:")
    return None


def _third_party_modules() -> set[str]:
    try: mods = set(importlib.metadata.packages_distributions())
    except Exception: mods = set()
    return {m for m in mods if len(m) > 2 and not m.startswith("_")} - {"o1_pruner"}


_THIRD = None
_FILE_EXTS = {"csv", "json", "jsonl", "yaml", "yml", "md", "txt", "png", "py", "ipynb", "parquet", "arrow", "pt"}


def classify_warning(line: str) -> tuple[str, str] | None:
    """`("warning"|"warning-prefix", what)` for a shown warning line, None when it is clean project text."""
    global _THIRD
    m = _WARNING.match(line.strip())
    if not m: return None
    prefix, cat, msg = m.group("prefix").strip(), m.group("cat"), m.group("msg")
    if prefix:
        pm = _WARN_PREFIX.match(prefix)
        file = pm.group("file") if pm else prefix
        if _IPYTHON_FILE.search(file):
            return "warning-prefix", f"{cat} shown with prefix {prefix!r}: show the message only"
        if re.search(r"site-packages|dist-packages", file) or not re.search(r"(^|/)o1_pruner/", file):
            mod = re.sub(r".*(?:site|dist)-packages/", "", file)
            return "warning", f"third-party {cat} from {mod}: {msg[:90]}"
        return "warning-prefix", f"{cat} shown with file-path prefix {prefix!r}: show the message only"
    if _THIRD is None: _THIRD = _third_party_modules()
    for m in re.finditer(r"\b([A-Za-z_]\w*)(\.[A-Za-z_]\w*|/|`)", msg):  # a module: torch.cuda, `peft`, trl/
        if m.group(1) in _THIRD and m.group(2).lstrip(".").lower() not in _FILE_EXTS:
            return "warning", f"third-party {cat} naming {m.group(1)}: {msg[:90]}"
    return None


def output_texts(out) -> list[tuple[str, str]]:
    """(label, text) of what an output shows: stream text, or the textual data a page would display."""
    if out.output_type == "stream": return [(out.get("name", "stream"), out.get("text", ""))]
    data = out.get("data", {})
    for mime in ("text/html", "text/markdown", "text/latex", "text/plain"):
        if mime in data:
            v = data[mime]
            return [(mime, "".join(v) if isinstance(v, list) else v)]
    return []


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _add(found: dict, kind: str, what: str):
    n, first = found.get(kind, (0, what))
    found[kind] = (n + 1, first)


def check_outputs(cell) -> list[tuple[str, str]]:
    """(kind, what) findings in one cell's shown outputs; several lines of one kind make one finding."""
    found, res = {}, []
    for out in shown_outputs(cell):
        if out.output_type == "error":
            res.append(("error", f"{out.get('ename', 'Error')}: {str(out.get('evalue', ''))[:100]}"))
            continue
        for label, text in output_texts(out):
            text = _ANSI.sub("", text)
            for line in re.split(r"\r\n|\r|\n", text):
                if not line.strip(): continue
                if "Traceback (most recent call last)" in line:
                    _add(found, "traceback", f"{label}: {line.strip()[:100]}")
                w = classify_warning(line)
                if w:
                    _add(found, *w)
                    if w[0] == "warning": continue
                    line = _WARNING.match(line.strip()).group("msg")
                if _PROGRESS.search(line): _add(found, "progress-bar", f"{label}: {line.strip()[:100]!r}")
                p = find_path(line)
                if p: _add(found, "path", f"{label}: {p[:100]} (in {line.strip()[:80]!r})")
    for kind, (n, first) in found.items(): res.append((kind, first + (f" (+{n - 1} more)" if n > 1 else "")))
    return res


# ---------------------------------------------------------------- images, long lines, math

_MD_IMG = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?P<src>[^)]*)\)")
_HTML_IMG = re.compile(r"<img\b[^>]*>", re.I)


def markdown_image_findings(text: str) -> list[str]:
    res = [f"markdown image {m.group('src')[:60]!r} has no alt text" for m in _MD_IMG.finditer(text)
           if not m.group("alt").strip()]
    for m in _HTML_IMG.finditer(text):
        alt = re.search(r"\balt\s*=\s*(\"[^\"]*\"|'[^']*')", m.group(0))
        if not alt or not alt.group(1)[1:-1].strip(): res.append(f"<img> without alt text: {m.group(0)[:60]!r}")
    return res


def _n_images(cell) -> int:
    return sum(1 for o in shown_outputs(cell) for k in o.get("data", {}) if k.startswith("image/"))


def image_alt_findings(cell) -> list[str]:
    """Image outputs need `#| fig-alt:` (a string, or a list with one non-empty entry per image)."""
    n = _n_images(cell)
    if not n: return []
    alt = cell_options(cell.source).get("fig-alt")
    alts = alt if isinstance(alt, list) else [alt] * n if alt else []
    given = sum(1 for a in alts[:n] if a and str(a).strip())
    if given >= n: return []
    return [f"{n - given} of {n} image output(s) without alt text (add `#| fig-alt: <what the figure shows>`)"]


_CODE_SPAN = re.compile(r"```.*?```|~~~.*?~~~|`[^`\n]*`", re.S)
_MATH = re.compile(r"\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\)|\\begin\{(\w+\*?)\}.*?\\end\{\1\}"
                   r"|(?<![\\$\w])\$(?=\S)(?:[^$\n]|\\\$)+?(?<=[^\s\\])\$(?![\w$])", re.S)


def count_math(markdown: str) -> int:
    """How many formulas MathJax should typeset in a markdown text (code spans and blocks excluded)."""
    return len(_MATH.findall(_CODE_SPAN.sub(" ", markdown)))


def expected_math(cell) -> int:
    if cell.cell_type == "markdown": return count_math(cell.source)
    n = 0
    for out in shown_outputs(cell):
        md = out.get("data", {}).get("text/markdown")
        if md and "text/html" not in out.get("data", {}): n += count_math("".join(md) if isinstance(md, list) else md)
    return n


def long_lines(lines: list[str]) -> list[str]:
    return [l for l in lines if len(l) > MAX_LINE]


# ---------------------------------------------------------------- static check of one page

def check_page(name: str, src_nb, page_nb) -> tuple[list[Finding], list[int | str]]:
    """Findings from a page's shown cells and saved outputs, plus the page-cell -> source-cell map."""
    where = map_cells(src_nb, page_nb)
    res = []
    for k, cell in enumerate(page_nb.cells):
        c = where[k]
        if cell.cell_type == "markdown":
            res += [Finding(name, c, "image-alt", w) for w in markdown_image_findings(cell.source)]
            continue
        if cell.cell_type != "code": continue
        for l in long_lines(shown_source(cell)):
            res.append(Finding(name, c, "long-line",
                               f"code line of {len(l)} characters (max {MAX_LINE}): {l.strip()[:60]!r}"))
        res += [Finding(name, c, kind, what) for kind, what in check_outputs(cell)]
        res += [Finding(name, c, "image-alt", w) for w in image_alt_findings(cell)]
        for out in shown_outputs(cell):
            data = out.get("data", {})
            v = data.get("text/html") or data.get("text/markdown")
            if v: res += [Finding(name, c, "image-alt", w) for w in markdown_image_findings("".join(v))]
    for i, cell in enumerate(src_nb.cells):
        if cell.cell_type == "code" and "export" in cell_options(cell.source):
            lines = long_lines([l for l in cell.source.splitlines() if not _DIRECTIVE.match(l)])
            if lines:
                longest = max(lines, key=len)
                res.append(Finding(name, i, "long-line", f"{len(lines)} exported-source line(s) over {MAX_LINE} "
                                   f"characters, longest {len(longest)}: {longest.strip()[:60]!r}"))
    return res, where


# ---------------------------------------------------------------- HTML rendering (nbconvert)

MATHJAX_CONFIG = """<script>
window.MathJax = {
  tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], displayMath: [['$$', '$$'], ['\\\\[', '\\\\]']],
        processEscapes: true, processEnvironments: true,
        packages: {'[-]': ['noerrors', 'noundefined']}},
  options: {renderActions: {addMenu: []}}
};
</script>
"""


_CELL_KEYS = {"code": {"id", "cell_type", "metadata", "source", "outputs", "execution_count"},
              "markdown": {"id", "cell_type", "metadata", "source", "attachments"},
              "raw": {"id", "cell_type", "metadata", "source", "attachments"}}


def render_nb(page_nb):
    """A copy of a processed page as Quarto would show it: hidden cells/sources/outputs dropped, no directives."""
    nb = copy.deepcopy(page_nb)
    cells = []
    for k, cell in enumerate(nb.cells):
        for key in set(cell) - _CELL_KEYS[cell.cell_type]: del cell[key]  # nbdev's own attributes (has_sd)
        cell.metadata.pop("execution", None)  # nbdev's timing floats fail nbformat validation
        cell["id"] = f"c{k}"
        opts = cell_options(cell.source)
        if cell.cell_type == "raw":
            fm = cell.source.strip()
            if fm.startswith("---"):
                meta = yaml.safe_load(fm.strip("-")) or {}
                md = "".join(f"{p}\n\n" for p in (f"# {meta['title']}" if meta.get("title") else "",
                                                   f"> {meta['description']}" if meta.get("description") else "") if p)
                cell = nbformat.v4.new_markdown_cell(md); cell["id"] = f"c{k}"
        elif cell.cell_type == "code":
            if _false(opts.get("include", True)): continue
            if _false(opts.get("echo", True)): cell.metadata["transient"] = {"remove_source": True}
            if _false(opts.get("output", True)): cell.outputs = []
            cell.source = "\n".join(l for l in cell.source.splitlines() if not _DIRECTIVE.match(l))
        cells.append(cell)
    nb.cells = cells
    return nb


def render_html(page_nb, mathjax_js: Path) -> str:
    from nbconvert import HTMLExporter
    exporter = HTMLExporter(template_name="lab", mathjax_url=mathjax_js.resolve().as_uri(),
                            exclude_input_prompt=True, exclude_output_prompt=True)
    html, _ = exporter.from_notebook_node(render_nb(page_nb))
    tag = f'<script src="{mathjax_js.resolve().as_uri()}"> </script>'
    if tag not in html: raise RuntimeError("nbconvert template changed: MathJax script tag not found")
    return html.replace(tag, MATHJAX_CONFIG + f'<script src="{mathjax_js.resolve().as_uri()}"></script>', 1)


# ---------------------------------------------------------------- headless Chromium over the DevTools protocol

PAGE_JS = r"""(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const t0 = performance.now();
  const ready = () => !!(window.MathJax && MathJax.startup && MathJax.startup.promise);
  while (!ready() && performance.now() - t0 < 15000) await sleep(50);
  const mj = ready();
  if (mj) await MathJax.startup.promise;
  await document.fonts.ready;
  const cellOf = el => { const c = el && el.closest('[id^="cell-id="]'); return c ? c.id.slice(8) : null; };
  const rendered = {};
  for (const m of document.querySelectorAll('mjx-container')) rendered[cellOf(m)] = (rendered[cellOf(m)] || 0) + 1;
  const errors = [...document.querySelectorAll('mjx-merror')].map(e =>
    ({cell: cellOf(e), what: e.getAttribute('data-mjx-error') || e.textContent}));
  const raw = /\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\\[A-Za-z]{2,}/, leftovers = [];
  for (const root of document.querySelectorAll('.jp-RenderedMarkdown')) {
    const w = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    while (w.nextNode()) {
      const n = w.currentNode;
      if (n.parentElement.closest('pre, code, script, style, mjx-container')) continue;
      const m = n.textContent.match(raw);
      if (m) leftovers.push({cell: cellOf(n.parentElement), what: n.textContent.trim().slice(0, 80)});
    }
  }
  return {mathjax: mj ? MathJax.version : null, cells: document.querySelectorAll('.jp-Cell').length,
          text: document.body.innerText.trim().length, rendered, errors, leftovers,
          height: Math.ceil(document.documentElement.scrollHeight)};
})()"""


class Chromium:
    """One headless Chromium; each page opens in its own tab through the DevTools protocol."""

    def __init__(self, exe: str, log: Path, timeout: float = 60):
        import websocket  # websocket-client, a jupyter_server dependency
        self.timeout, self.events, self._id = timeout, [], 0
        self.profile = tempfile.mkdtemp(prefix="check-docs-chromium-")
        self.log = open(log, "wb")
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
               f"--window-size={WIDTH},900", "about:blank"]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        port_file, t0 = Path(self.profile) / "DevToolsActivePort", time.time()
        while not (port_file.exists() and len(port_file.read_text().split()) >= 2):
            if self.proc.poll() is not None or time.time() - t0 > timeout:
                self.close()
                raise RuntimeError(f"chromium did not start (exit code {self.proc.returncode}); see {log}")
            time.sleep(0.05)
        port, path = port_file.read_text().split()[:2]
        self.ws = websocket.create_connection(f"ws://127.0.0.1:{port}{path}", timeout=timeout, suppress_origin=True)

    def call(self, method: str, session: str | None = None, **params):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session: msg["sessionId"] = session
        self.ws.send(json.dumps(msg))
        while True:
            m = json.loads(self.ws.recv())
            if m.get("id") == self._id:
                if "error" in m: raise RuntimeError(f"{method}: {m['error'].get('message')}")
                return m.get("result", {})
            if "method" in m: self.events.append(m)

    def wait_event(self, name: str, session: str):
        t0 = time.time()
        while True:
            for e in self.events:
                if e["method"] == name and e.get("sessionId") == session: return e
            if time.time() - t0 > self.timeout: raise RuntimeError(f"timed out waiting for {name}")
            m = json.loads(self.ws.recv())
            if "method" in m: self.events.append(m)

    def check(self, html: Path, png: Path | None) -> dict:
        """Load a page, wait for MathJax and fonts, return the DOM facts (PAGE_JS); save a full-page PNG."""
        tid = self.call("Target.createTarget", url="about:blank")["targetId"]
        sid = self.call("Target.attachToTarget", targetId=tid, flatten=True)["sessionId"]
        try:
            self.events.clear()
            for m in ("Page.enable", "Runtime.enable"): self.call(m, sid)
            self.call("Emulation.setDeviceMetricsOverride", sid, width=WIDTH, height=900, deviceScaleFactor=1,
                      mobile=False)
            nav = self.call("Page.navigate", sid, url=html.resolve().as_uri())
            if nav.get("errorText"): raise RuntimeError(f"navigation failed: {nav['errorText']}")
            self.wait_event("Page.loadEventFired", sid)
            r = self.call("Runtime.evaluate", sid, expression=PAGE_JS, awaitPromise=True, returnByValue=True)
            if "exceptionDetails" in r:
                raise RuntimeError(f"page check script failed: {r['exceptionDetails'].get('text')}")
            facts = r["result"]["value"]
            thrown = [e["params"]["exceptionDetails"] for e in self.events
                      if e["method"] == "Runtime.exceptionThrown" and e.get("sessionId") == sid]
            facts["js_errors"] = [d.get("exception", {}).get("description", "")[:120] or d.get("text", "")
                                  for d in thrown]
            if png is not None:
                h = max(900, int(facts["height"]))
                shot = self.call("Page.captureScreenshot", sid, format="png", captureBeyondViewport=True,
                                 clip={"x": 0, "y": 0, "width": WIDTH, "height": h, "scale": 1})
                png.write_bytes(base64.b64decode(shot["data"]))
            return facts
        finally:
            self.call("Target.closeTarget", targetId=tid)

    def close(self):
        try: self.ws.close()
        except Exception: pass
        if self.proc.poll() is None:
            self.proc.terminate()
            try: self.proc.wait(10)
            except subprocess.TimeoutExpired: self.proc.kill(); self.proc.wait()
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


def browser_findings(name: str, facts: dict, page_nb, where: list) -> tuple[list[Finding], int, int]:
    """Findings from the DOM facts of a loaded page; also (formulas rendered, formulas expected)."""
    res = []
    if not facts["cells"] or facts["text"] < 20: res.append(Finding(name, None, "render", "empty page body"))
    res += [Finding(name, None, "render", f"JavaScript error: {e}") for e in facts["js_errors"]]
    if facts["mathjax"] is None: res.append(Finding(name, None, "math", "MathJax did not load"))

    def src(cid):
        if cid is None or not str(cid).startswith("c"): return None
        return where[int(cid[1:])]

    res += [Finding(name, src(e["cell"]), "math", f"MathJax error: {e['what'][:100]}") for e in facts["errors"]]
    res += [Finding(name, src(e["cell"]), "math", f"raw TeX left in the page: {e['what']!r}")
            for e in facts["leftovers"]]
    expected = 0
    for k, cell in enumerate(page_nb.cells):
        exp, got = expected_math(cell), facts["rendered"].get(f"c{k}", 0)
        expected += exp
        if got < exp: res.append(Finding(name, where[k], "math", f"{got} of {exp} formulas rendered"))
    return res, sum(facts["rendered"].values()), expected


# ---------------------------------------------------------------- main

def select_pages(names: list[str] | None, nbs: Path) -> list[Path]:
    allp = sorted(nbs.glob("*.ipynb"))
    if not names: return allp
    res = []
    for n in names:
        stem = Path(n).name.removesuffix(".ipynb")
        hit = [p for p in allp if p.stem == stem] or [p for p in allp if p.stem.startswith(stem + "_")]
        if len(hit) != 1: raise ValueError(f"--pages: no single notebook in {nbs} matches {n!r}")
        res += hit
    return list(dict.fromkeys(res))


def process(pages: list[Path], nbs: Path) -> tuple[Path, dict[str, str]]:
    """nbdev's docs processing of `pages` into its cache folder; also {page: error} for pages it could not process."""
    from nbdev.serve import proc_nbs
    def run(ps, force):
        file_re = "^(" + "|".join(re.escape(p.name) for p in ps) + ")$"
        return Path(proc_nbs(str(nbs), n_workers=0, force=force, file_re=file_re))
    try: return run(pages, True), {}
    except Exception: pass
    cache, failed = None, {}
    for p in pages:  # one at a time, to name the pages that fail
        try: cache = run([p], False)
        except Exception as e:
            msg = str(e).strip().splitlines() or [""]
            failed[p.stem] = f"{type(e).__name__}: {msg[0][:100]}" + (f" ... {msg[-1][:100]}" if len(msg) > 1 else "")
    from nbdev.config import get_config
    return cache or get_config(nbs).config_path / "_proc", failed


def find_chromium(given: str | None) -> str | None:
    for c in (given, os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
              shutil.which("chromium-browser"), shutil.which("google-chrome")):
        if c and Path(c).exists(): return c
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pages", nargs="+", help="notebooks to check, e.g. 06_difficulty (default: all in nbs/)")
    ap.add_argument("--out", type=Path, default=ROOT / "_docs_check", help="artifact folder (default: _docs_check/)")
    ap.add_argument("--no-screenshots", action="store_true", help="load pages in Chromium but keep no PNGs")
    ap.add_argument("--no-browser", action="store_true", help="notebook checks only (no HTML, Chromium, math check)")
    ap.add_argument("--chromium", help="Chromium executable (default: $CHROMIUM, /usr/bin/chromium)")
    ap.add_argument("--mathjax", type=Path, help=f"MathJax 3 tex-chtml-full.js (default: OUT/{MATHJAX_REL})")
    ap.add_argument("--nbs", type=Path, help="notebook folder of an nbdev project (default: this project's nbs/)")
    args = ap.parse_args(argv)
    from nbdev.config import get_config
    nbs = (args.nbs or Path(get_config(ROOT).nbs_path)).resolve()
    out = args.out.resolve()
    mathjax = (args.mathjax or out / MATHJAX_REL).resolve()
    os.chdir(get_config(nbs).config_path)  # nbdev's processors read the config of the working directory
    try: pages = select_pages(args.pages, nbs)
    except ValueError as e: ap.error(str(e))
    out.mkdir(parents=True, exist_ok=True)

    browser = None
    if not args.no_browser:
        exe = find_chromium(args.chromium)
        if not exe:
            print("FAIL: Chromium not found: apt-get install -y chromium (or pass --chromium PATH, or --no-browser)")
            return 1
        if not mathjax.exists():
            print(f"FAIL: MathJax not found at {mathjax}: npm install --prefix {out / '.cache/mathjax'} mathjax@3")
            return 1
        (out / "html").mkdir(exist_ok=True)
        if not args.no_screenshots: (out / "screenshots").mkdir(exist_ok=True)

    t0 = time.time()
    cache, failed = process(pages, nbs)
    t_proc = time.time() - t0
    print(f"nbdev proc_nbs: {len(pages)} page(s) into {cache} in {t_proc:.1f} s", flush=True)

    findings, rows = [], []
    if not args.no_browser:
        try: browser = Chromium(exe, out / "chromium.log")
        except RuntimeError as e:
            print(f"FAIL: {e}")
            return 1
    try:
        for src_path in pages:
            t1, name = time.time(), src_path.stem
            src_nb = nbformat.read(src_path, as_version=4)
            page_path = cache / src_path.relative_to(nbs)
            if name in failed or not page_path.exists():
                why = failed.get(name, "no page written")
                findings.append(Finding(name, None, "render", f"nbdev processing failed: {why}"))
                rows.append((name, len(src_nb.cells), "-", 1, time.time() - t1)); continue
            page_nb = nbformat.read(page_path, as_version=4)
            page, where = check_page(name, src_nb, page_nb)
            formulas = "-"
            if browser:
                html = out / "html" / f"{name}.html"
                try:
                    html.write_text(render_html(page_nb, mathjax), encoding="utf-8")
                    png = None if args.no_screenshots else out / "screenshots" / f"{name}.png"
                    facts = browser.check(html, png)
                    more, got, exp = browser_findings(name, facts, page_nb, where)
                    page += more
                    formulas = f"{got}/{exp}"
                except Exception as e:
                    page.append(Finding(name, None, "render", f"{type(e).__name__}: {str(e)[:150]}"))
            findings += page
            rows.append((name, len(src_nb.cells), formulas, len(page), time.time() - t1))
            print(f"  {name}: {len(page)} finding(s) in {rows[-1][-1]:.1f} s", flush=True)
    finally:
        if browser: browser.close()

    order = {p.stem: i for i, p in enumerate(pages)}
    findings.sort(key=lambda f: (order.get(f.page, 0), f.cell if isinstance(f.cell, int) else -1, f.kind))
    (out / "findings.txt").write_text("".join(f"{f}\n" for f in findings))
    print()
    for f in findings: print(f)
    print(f"\n{'page':<18} {'cells':>5} {'formulas':>9} {'findings':>8} {'seconds':>7}")
    for name, n, fm, k, s in rows: print(f"{name:<18} {n:>5} {fm:>9} {k:>8} {s:>7.1f}")
    total = time.time() - t0
    kinds = {}
    for f in findings: kinds[f.kind] = kinds.get(f.kind, 0) + 1
    print(f"\n{len(findings)} finding(s) {dict(sorted(kinds.items()))} on {len(pages)} page(s); "
          f"total {total:.0f} s (proc_nbs {t_proc:.0f} s); artifacts in {out}")
    print("docs check:", "FAIL" if findings else "PASS")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
