"""Config parsing shared by every `o1-pruner` subcommand: dataclasses + YAML recipes + CLI flags."""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any, Sequence

import yaml

RECIPE_DIR = Path(__file__).parent / "recipes"


class ConfigError(ValueError):
    """A recipe or flag that cannot be turned into a valid config."""


def list_recipes(prefix: str = "") -> list[str]:
    """Names of the recipes shipped with the package (optionally only those starting with `prefix`)."""
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml") if p.stem.startswith(prefix))


def load_recipe(name_or_path: str | Path) -> dict[str, Any]:
    """Load a YAML recipe by shipped name (`marco-o1-sample`) or by file path."""
    path = Path(name_or_path)
    if not path.exists() and path.suffix.lower() not in (".yaml", ".yml"):  # names may hold dots (r1-distill-1.5b-sample)
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
    parser.add_argument("--config", "--recipe", dest="_recipe", default=None,
                        help=f"YAML recipe: a file, or a shipped name ({', '.join(list_recipes()) or 'none'}); flags override it")
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
