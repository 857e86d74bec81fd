#!/usr/bin/env bash
# One prepared command for a bare H100/H200 machine: environment, versions, the library installed over the machine's
# own torch, then bench/gpu_check.py (the real trainer, scoring and generation at Qwen2.5-1.5B shape) inside an
# 8-minute budget. Prints one table; the rows go to bench/results/gpu_check_<machine>.json and to $OUT when set.
#
#   bash bench/gpu_check.sh                 # on the GPU machine (extra arguments go to gpu_check.py)
#   bash bench/gpu_check.sh --dry-run       # every row at tiny size on the CPU, anywhere
#   bash bench/gpu_check.sh --wheels        # HERE, before: download the packages the GPU image lacks into .whl/
#
# The GPU machine's image has torch, transformers, accelerate, peft, pandas and pyarrow, but not `datasets` (nor its
# dill, multiprocess), and reaches no registry. So, once, on the development machine, in the checkout that is sent
# there: `echo /.whl/ >> .git/info/exclude; bash bench/gpu_check.sh --wheels`; then run it with `.whl` carried along.
# Environment: WHEELS (for --wheels: the requirements, space-separated), BUDGET_S (default 420: the rows left are
# skipped past it), HARD_TIMEOUT_S (default 470: the python process is stopped; the rows finished are already in the
# JSON), PYTHON (default python3).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
read -r -a WHEELS <<< "${WHEELS:-datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19}"

if [ "${1:-}" = "--wheels" ]; then
    mkdir -p .whl
    "$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "${WHEELS[@]}"
    ls -l .whl
    exit 0
fi

export TOKENIZERS_PARALLELISM=false HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 PYTHONUNBUFFERED=1
export PYTORCH_CUDA_ALLOC_CONF="${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}"
echo "== machine: $(uname -srm); $(nproc --all) CPUs; $(date -u +%FT%TZ)"
if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv || nvidia-smi || true
else
    echo "nvidia-smi: not found"
fi

if compgen -G ".whl/*.whl" >/dev/null; then
    echo "== carried wheels: $(cd .whl && ls *.whl | tr '\n' ' ')"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/o1p-site .whl/*.whl
    export PYTHONPATH="/tmp/o1p-site${PYTHONPATH:+:$PYTHONPATH}"
fi
# the package itself, editable, with no index and no dependencies: the machine's torch stays as it is
if "$PY" -m pip install -q --no-index --no-deps --no-build-isolation -e . >/tmp/o1p-install.log 2>&1; then
    echo "== o1-pruner installed (pip install -e . --no-deps)"
else
    echo "== pip install -e . failed (last lines below); using PYTHONPATH=$PWD instead"
    tail -3 /tmp/o1p-install.log || true
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi

"$PY" - <<'EOF'
import importlib, importlib.metadata as md, sys
print("== python", sys.version.split()[0], sys.executable)
for p in ("torch", "transformers", "accelerate", "tokenizers", "datasets", "peft", "pyarrow", "flash-attn", "vllm"):
    try: v = md.version(p)
    except md.PackageNotFoundError: v = "-"
    print(f"   {p:<13} {v}")
import torch
print(f"   cuda {torch.version.cuda}, available {torch.cuda.is_available()}",
      f"({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "")
for m in ("datasets", "o1_pruner.train", "o1_pruner.backends"):
    try: importlib.import_module(m)
    except Exception as e:
        sys.exit(f"cannot import {m}: {type(e).__name__}: {e}\n(a missing package: run "
                 "`bash bench/gpu_check.sh --wheels` on the development machine, then carry .whl)")
EOF

set +e
timeout --kill-after=15 "${HARD_TIMEOUT_S:-470}" "$PY" -u bench/gpu_check.py --budget-s "${BUDGET_S:-420}" "$@"
rc=$?
set -e
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "gpu_check.py stopped at HARD_TIMEOUT_S=${HARD_TIMEOUT_S:-470}s; the JSON holds the rows done before"
fi
if [ -n "${OUT:-}" ]; then ls -l "$OUT"; fi
exit "$rc"
