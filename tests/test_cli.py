from dataclasses import dataclass, field

import pytest

from o1_pruner import cli
from o1_pruner.config import ConfigError, list_recipes, load_recipe, parse_config


@dataclass
class A:
    model: str = field(default="m", metadata={"help": "model"})
    k: int = 4
    temperature: float = 0.5


@dataclass
class B:
    output_dir: str = "out"
    flag: bool = False


def test_flags_override_recipe(tmp_path):
    r = tmp_path / "r.yaml"
    r.write_text("model: big\nk: 16\noutput_dir: runs/x\n")
    a, b = parse_config([A, B], ["--recipe", str(r), "--k", "8", "--flag"])
    assert (a.model, a.k, a.temperature, b.output_dir, b.flag) == ("big", 8, 0.5, "runs/x", True)
    a, b = parse_config([A, B], [f"--config={r}"])
    assert a.k == 16


def test_recipe_errors(tmp_path):
    r = tmp_path / "r.yaml"
    r.write_text("modle: typo\n")
    with pytest.raises(ConfigError, match="Unknown option.*modle"):
        parse_config([A, B], ["--recipe", str(r)])
    r.write_text("- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        parse_config([A], ["--recipe", str(r)])
    with pytest.raises(ConfigError, match="not found"):
        load_recipe("no-such-recipe-xyz")
    with pytest.raises(ConfigError, match="needs a value"):
        parse_config([A], ["--recipe"])


def test_shipped_recipes_parse_as_yaml():
    for name in list_recipes():
        assert isinstance(load_recipe(name), dict)


def test_cli_usage_and_unknown(capsys):
    assert cli.main([]) == 0
    assert "sample" in capsys.readouterr().out
    assert cli.main(["frobnicate"]) == 2
    assert cli.main(["--version"]) == 0
