#!/usr/bin/env bash
# Stage-4 GPU check, one command, no downloads: O1PrunerTrainer step at Qwen2.5-1.5B scale (cached vs online
# reference, bf16), transformers generate (vLLM if importable), one table. Under 8 minutes on one H100/H200.
#   bash bench/gpu_check.sh            # on the GPU machine
#   bash bench/gpu_check.sh --dry-run  # tiny model on the CPU: checks the script's logic anywhere
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTORCH_CUDA_ALLOC_CONF="${PYTORCH_CUDA_ALLOC_CONF:-expandable_segments:True}"
exec timeout 470 "$PY" bench/gpu_check.py "$@"
