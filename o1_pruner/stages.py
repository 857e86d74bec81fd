"""The pipeline's stages: name -> the function its command runs (for the CLI and `Pipeline`).

Each function takes the command's arguments (a list of strings) and returns an exit code. `o1-pruner train` sends a
command line whose `--method` (flag, or its recipe's) is a baseline to the baselines' trainer.
"""
from __future__ import annotations

import sys
from typing import Callable, Sequence

from . import analysis, baselines, evaluate, reward, sampling, train
from .config import load_recipe


def requested_method(argv:Sequence[str]|None, # command-line arguments of `o1-pruner train`
                    ) -> str|None:
    "The `--method` a command line asks for (the flag, else its recipe's), or None."
    argv, method = list(sys.argv[1:] if argv is None else argv), None
    for i, a in enumerate(argv):
        key, eq, val = a.partition("=")
        if key in ("--config", "--recipe"):
            val = val if eq else (argv[i + 1] if i + 1 < len(argv) else None)
            if val: method = load_recipe(val).get("method", method)
    for i, a in enumerate(argv):
        key, eq, val = a.partition("=")
        if key == "--method": method = val if eq else (argv[i + 1] if i + 1 < len(argv) else None)
    return method


def train_cli(argv:Sequence[str]|None=None) -> int:
    "`o1-pruner train`: O1-Pruner, or the paper's baselines with `--method sft-shortest|dpo`."
    if requested_method(argv) in baselines.BASELINE_TRAIN_METHODS: return baselines.baseline_cli(argv)
    return train.train_cli(argv)


# stage -> (function of the command's arguments, one-line help), in pipeline order
STAGES: dict[str, tuple[Callable[[list[str]], int], str]] = {
    "sample": (sampling.sample_cli, "stage 1: pre-sample K solutions per problem into a sample store"),
    "analyze": (analysis.analyze_cli, "stage 2: difficulty analysis of a sample store (tables + plots)"),
    "build-dataset": (reward.build_dataset_cli, "stage 3: length-harmonizing rewards + reference log-probs"),
    "train": (train_cli, "stage 4: length-harmonizing fine-tuning (and the paper's baselines)"),
    "evaluate": (evaluate.evaluate_cli, "stage 5: accuracy / tokens / AES of models on test sets"),
}


def run_stage(name:str, # a key of STAGES
              argv:Sequence[str], # the command's arguments
             ) -> int:
    "Run one stage's command function; its exit code."
    if name not in STAGES: raise ValueError(f"unknown stage {name!r}; stages are {list(STAGES)}")
    return int(STAGES[name][0](list(argv)) or 0)
