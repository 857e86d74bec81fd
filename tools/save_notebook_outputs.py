"""Execute the notebooks and save their outputs into them: what the docs site renders.

Notebooks run as under `nbdev-test` (`IN_TEST`: the stage notebooks run the toy pipeline at small settings,
`slow` and `cuda` cells are skipped), except 12_demo, which runs without `IN_TEST` and so shows the full
demo (it resumes a finished run in nbs/runs/demo instantly; otherwise it runs it, about 8.5 minutes).
Docs runs are quiet: progress bars off (tqdm, transformers, datasets), warnings shown as `Category: message` with no
file or `<ipython-input-...>` prefix, and the random temporary folders the examples write to shown as `<tmp>/...`.
Then `nbdev-clean` normalises the files. Commit the notebooks afterwards.

usage: python tools/save_notebook_outputs.py [nbs/NN_name.ipynb ...]
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

QUIET = {"TQDM_DISABLE": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
         "TRANSFORMERS_VERBOSITY": "error", "PYTHONWARNINGS": "ignore::FutureWarning,ignore::DeprecationWarning"}
os.environ.update(QUIET)  # before the libraries load: they read these once (children inherit them)

import nbdev.test as nbtest
import tqdm.std

_tqdm_init = tqdm.std.tqdm.__init__


def _quiet_tqdm(self, *args, **kwargs):
    "Every bar off in docs runs, also those a caller enables explicitly (except bars written to os.devnull)."
    if getattr(kwargs.get("file"), "name", None) != os.devnull: kwargs["disable"] = True
    _tqdm_init(self, *args, **kwargs)


tqdm.std.tqdm.__init__ = _quiet_tqdm

FULL_RUN = {"12_demo.ipynb"}
REPO = Path(__file__).resolve().parents[1]
_TMP = re.compile(re.escape(os.path.realpath(tempfile.gettempdir())) + r"/[^/\s'\"`]+")


def _message_only(message, category, filename, lineno, line=None):
    "Warnings as a reader should see them: the category and the message."
    return f"{category.__name__}: {message}\n"


def _clean_text(text: str) -> str:
    "Temporary folders as `<tmp>`, this checkout as a relative path."
    return _TMP.sub("<tmp>", text).replace(str(REPO / "nbs") + "/", "").replace(str(REPO) + "/", "")


def clean_outputs(fn: Path):
    "Rewrite machine paths in a saved notebook's text outputs."
    nb = json.loads(fn.read_text())
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if "text" in out: out["text"] = [_clean_text(t) for t in out["text"]]
            for mime, v in out.get("data", {}).items():
                if mime.startswith("text/") and isinstance(v, list): out["data"][mime] = [_clean_text(t) for t in v]
    fn.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def main(paths):
    nbs = [Path(p).resolve() for p in paths] or sorted(Path("nbs").resolve().glob("*.ipynb"))
    failed = []
    warnings.formatwarning = _message_only
    for fn in nbs:
        full = fn.name in FULL_RUN
        nbtest.in_notebook = (lambda: True) if full else (lambda: False)  # test_nb sets IN_TEST unless "in a notebook"
        ok, secs = nbtest.test_nb(fn, skip_flags=["slow", "cuda"], save=True)
        print(f"{fn}: {'saved' if ok else 'FAILED (not saved)'} in {secs:.0f} s{' (full run, no IN_TEST)' if full else ''}", flush=True)
        if ok: clean_outputs(fn)
        else: failed.append(str(fn))
    subprocess.run([str(Path(sys.executable).parent / "nbdev-clean")], check=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
