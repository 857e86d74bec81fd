"""The `o1-pruner` command: one subcommand per pipeline stage."""
from __future__ import annotations

import importlib
import sys

from .config import ConfigError

# subcommand -> ("module:function", one-line help); each function takes argv (list[str]) and returns an exit code
COMMANDS = {
    "grade": ("o1_pruner.grading:grade_cli", "grade a file of model responses against a dataset's gold answers"),
    "sample": ("o1_pruner.sampling:sample_cli", "stage 1: pre-sample K solutions per problem into a sample store"),
    "analyze": ("o1_pruner.analysis:analyze_cli", "stage 2: difficulty analysis of a sample store (tables + plots)"),
    "build-dataset": ("o1_pruner.reward:build_dataset_cli", "stage 3: length-harmonizing rewards + reference log-probs"),
    "train": ("o1_pruner.train:train_cli", "stage 4: length-harmonizing fine-tuning (and the paper's baselines)"),
    "evaluate": ("o1_pruner.evaluate:evaluate_cli", "stage 5: accuracy / tokens / AES of models on test sets"),
    "demo": ("o1_pruner.demo:demo_cli", "run all five stages on the embedded CPU default and write a report"),
}


def _usage() -> str:
    lines = ["usage: o1-pruner <command> [options]   (o1-pruner <command> --help for its options)", "", "commands:"]
    lines += [f"  {name:<14} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    """Entry point of the `o1-pruner` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from . import __version__
        print(__version__)
        return 0
    cmd, rest = argv[0], argv[1:]
    if cmd not in COMMANDS:
        print(f"o1-pruner: unknown command {cmd!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    target, _ = COMMANDS[cmd]
    mod_name, fn_name = target.split(":")
    fn = getattr(importlib.import_module(mod_name), fn_name)
    try:
        return int(fn(rest) or 0)
    except ConfigError as e:
        print(f"o1-pruner {cmd}: configuration error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\no1-pruner {cmd}: interrupted; rerun the same command to resume where supported.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
