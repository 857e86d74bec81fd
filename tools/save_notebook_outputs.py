"""Execute the notebooks and save their outputs into them: what the docs site renders.

Notebooks run as under `nbdev-test` (`IN_TEST`: the stage notebooks run the toy pipeline at small settings,
`slow` and `cuda` cells are skipped), except 12_demo, which runs without `IN_TEST` and so shows the full
demo (it resumes a finished run in nbs/runs/demo instantly; otherwise it runs it, about 8 minutes).
Then `nbdev-clean` normalises the files. Commit the notebooks afterwards.

usage: python tools/save_notebook_outputs.py [nbs/NN_name.ipynb ...]
"""
import subprocess
import sys
from pathlib import Path

import nbdev.test as nbtest

FULL_RUN = {"12_demo.ipynb"}


def main(paths):
    nbs = [Path(p).resolve() for p in paths] or sorted(Path("nbs").resolve().glob("*.ipynb"))
    failed = []
    for fn in nbs:
        full = fn.name in FULL_RUN
        nbtest.in_notebook = (lambda: True) if full else (lambda: False)  # test_nb sets IN_TEST unless "in a notebook"
        ok, secs = nbtest.test_nb(fn, skip_flags=["slow", "cuda"], save=True)
        print(f"{fn}: {'saved' if ok else 'FAILED (not saved)'} in {secs:.0f} s{' (full run, no IN_TEST)' if full else ''}", flush=True)
        if not ok: failed.append(str(fn))
    subprocess.run(["nbdev-clean"], check=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
