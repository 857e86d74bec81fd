"""The `o1-pruner` command: one subcommand per pipeline stage (`o1_pruner.stages`), plus `grade` and `demo`."""
from __future__ import annotations

import sys

from . import demo, grading, rewards, rollouts
from .config import ConfigError
from .stages import STAGES

# subcommand -> (function of its arguments returning an exit code, one-line help)
COMMANDS = {
    "grade": (grading.grade_cli, "grade a file of model responses against a dataset's gold answers"),
    "import-samples": (rollouts.import_samples_cli, "bring your own rollouts: K completions per problem into a store"),
    **STAGES,
    "export": (rewards.export_cli, "the reference statistics and the length-harmonizing reward for verl or TRL"),
    "demo": (demo.demo_cli, "run all five stages on the embedded CPU default and write a report"),
}


def _usage() -> str:
    lines = ["usage: o1-pruner <command> [options]   (o1-pruner <command> --help for its options)", "", "commands:"]
    lines += [f"  {name:<14} {help_}" for name, (_, help_) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    "Entry point of the `o1-pruner` console script."
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
    try:
        return int(COMMANDS[cmd][0](rest) or 0)
    except ConfigError as e:
        print(f"o1-pruner {cmd}: configuration error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\no1-pruner {cmd}: interrupted; rerun the same command to resume where supported.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
