"""Config parsing shared by every `o1-pruner` subcommand: dataclasses + YAML recipes + CLI flags."""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, Sequence

import yaml

RECIPE_DIR = Path(__file__).parent / "recipes"


class ConfigError(ValueError):
    """A user error (a recipe, flag, file or folder that cannot be used): the CLI prints it as one line, exit code 2."""


def none(v):
    "None for the usual spellings of 'nothing' in recipes and flags ('none', 'null', ''), else `v` unchanged."
    return None if isinstance(v, str) and v.strip().lower() in ("none", "null", "") else v


def check_range(errs:list[str], # messages collected so far (appended to)
                name:str, # option name, as the user types it
                value, # its value (None passes: an unset option)
                lo=None, # smallest allowed value (inclusive), or None
                hi=None, # largest allowed value (inclusive), or None
                lo_open:bool=False, # exclude `lo` itself
               ):
    "Append a message to `errs` when `value` is not finite or lies outside [lo, hi] (or (lo, hi])."
    if value is None or isinstance(value, bool): return
    if not math.isfinite(float(value)): errs.append(f"{name} must be a finite number, got {value}"); return
    if lo is not None and (value < lo or (lo_open and value == lo)):
        errs.append(f"{name} must be {'>' if lo_open else '>='} {lo}, got {value}")
    elif hi is not None and value > hi: errs.append(f"{name} must be <= {hi}, got {value}")


def check_writable(folder:str|os.PathLike, # a folder the command will write (created if missing)
                   what:str="output folder", # how to name it in the message
                  ):
    "Make sure `folder` can be created and written before any expensive work (creating nothing); ConfigError if not."
    p = os.path.abspath(os.fspath(folder))
    probe = p
    while not os.path.exists(probe): probe = os.path.dirname(probe)   # nothing is left behind by the check
    try:
        if not os.path.isdir(probe): raise NotADirectoryError(20, "not a folder", probe)
        with tempfile.NamedTemporaryFile(dir=probe, prefix=".o1-pruner-write-test-"): pass
    except OSError as e:
        raise ConfigError(f"cannot write the {what} {folder}: {e.strerror or e}; choose another --output_dir") from None


def list_recipes(prefix: str = "") -> list[str]:
    """Names of the recipes shipped with the package (optionally only those starting with `prefix`)."""
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml") if p.stem.startswith(prefix))


def load_recipe(name_or_path: str | Path) -> dict[str, Any]:
    """Load a YAML recipe by shipped name (`marco-o1-sample`) or by file path."""
    path = Path(name_or_path)
    if not path.exists() and path.suffix.lower() not in (".yaml", ".yml"):  # names hold dots (r1-distill-1.5b-sample)
        path = RECIPE_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise ConfigError(f"Recipe {name_or_path!r} not found: not a file, and not one of the shipped recipes "
                          f"{list_recipes()}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"Recipe {path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"Recipe {path} must be a mapping of option: value, got {type(data).__name__}")
    return data


def _fields(dc_types) -> set[str]:
    return {f.name for t in dc_types for f in dataclasses.fields(t)}


@contextlib.contextmanager
def output_lock(folder:str|os.PathLike, # a folder one command writes (created)
               ):
    "Hold an exclusive lock on `folder` while writing it; a second writer is refused at once with a ConfigError."
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, ".o1-pruner.lock"), "w") as f:
        try: fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"{folder} is being written by another o1-pruner process; wait for it or use another "
                              "--output_dir") from None
        yield


def parse_config(dc_types: Sequence[type], argv: Sequence[str] | None = None, prog: str | None = None,
                 description: str | None = None):
    """Parse `argv` into instances of `dc_types`: `--config`/`--recipe` YAML first, then flags override it.

    Returns a tuple with one instance per dataclass type, in order."""
    from transformers import HfArgumentParser

    argv = list(sys.argv[1:] if argv is None else argv)
    recipe: dict[str, Any] = {}
    rest: list[str] = []
    i = 0
    while i < len(argv):
        a = argv[i]
        key, _, val = a.partition("=")
        if key in ("--config", "--recipe"):
            if not val:
                if i + 1 >= len(argv):
                    raise ConfigError(f"{key} needs a value: a recipe name {list_recipes()} or a YAML file")
                val = argv[i + 1]
                i += 1
            recipe.update(load_recipe(val))
        else:
            rest.append(a)
        i += 1
    known = _fields(dc_types)
    unknown = sorted(set(recipe) - known)
    if unknown:
        raise ConfigError(f"Unknown option(s) in recipe: {unknown}. Valid options: {sorted(known)}")
    parser = HfArgumentParser(list(dc_types), prog=prog, description=description)
    for action in parser._actions:   # argparse formats help with %: a literal % in a help text would crash --help
        if action.help: action.help = re.sub(r"%(?!\()", "%%", action.help)
    parser.add_argument("--config", "--recipe", dest="_recipe", default=None,
                        help=f"YAML recipe: a file, or a shipped name ({', '.join(list_recipes()) or 'none'}); "
                             "flags override it")
    if recipe:
        parser.set_defaults(**recipe)
        for action in parser._actions:
            if action.dest in recipe:
                action.required = False
    ns = parser.parse_args(rest)
    out = []
    for t in dc_types:
        names = {f.name for f in dataclasses.fields(t) if f.init}
        kwargs = {k: v for k, v in vars(ns).items() if k in names}
        try:
            out.append(t(**kwargs))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"Invalid {t.__name__}: {e}") from e
    return tuple(out)
