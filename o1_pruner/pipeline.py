"""One recipe name runs the whole pipeline: the stage notebooks' configuration cell.

A *pipeline recipe* (`o1_pruner/recipes/pipelines/<name>.yaml`) names the model and, per stage, a stage
recipe and/or option overrides. `Pipeline(name).stage("sample")` writes the stage's full configuration
to `<root>/configs/sample.yaml`, runs the same entry point as `o1-pruner sample --recipe <that file>`,
and records it as done; every stage reads the previous stage's folder under `<root>` (default
`runs/<name>`). The `toy` pipeline is the embedded CPU default (the shipped toy reference model and the
toy task); with `small=True` (the notebooks pass `IN_TEST`) it uses a few problems and steps in a
temporary folder, and runs missing earlier stages itself.
"""
from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml

from .config import RECIPE_DIR, ConfigError, load_recipe
from .stages import STAGES as STAGE_TABLE, run_stage

PIPELINE_DIR = RECIPE_DIR / "pipelines"
STAGES = tuple(STAGE_TABLE)
STAGE_DIRS = {"sample": "samples", "analyze": "analysis", "build-dataset": "rewarded", "train": "checkpoint", "evaluate": "eval"}
STAGE_NOTEBOOKS = {"sample": "05_presampling", "analyze": "06_difficulty", "build-dataset": "07_reward",
                   "train": "08_finetune", "evaluate": "09_evaluation"}
_PROMPT_KEYS = {"sample": ("system", "user_template", "enable_thinking"), "build-dataset": ("enable_thinking",),
                "evaluate": ("system", "user_template", "enable_thinking")}
TRAIN_PROMPT = {"system": "marco"}   # the reference code's: its system prompt and the bare problem, for every model


def scoring_numerics(train_cfg:dict) -> dict:
    "build-dataset's dtype/autocast that compute as the training described by `train_cfg` does (step-0 ratio 1)."
    half = "bfloat16" if train_cfg.get("bf16") else "float16" if train_cfg.get("fp16") else None
    if not half: return {"dtype": "float32", "autocast": "none"}
    return {"dtype": half, "autocast": "none"} if train_cfg.get("deepspeed") else {"dtype": "float32", "autocast": half}


def list_pipelines() -> list[str]:
    "Names of the shipped pipeline recipes."
    return sorted(p.stem for p in PIPELINE_DIR.glob("*.yaml"))


def load_pipeline(name_or_path:str|Path, # a shipped pipeline name (`toy`, `marco-o1`, ...) or a YAML file
                  small:bool=False, # apply the recipe's `small` overrides (few problems and steps)
                 ) -> dict:
    "A pipeline recipe as a dict (with its `small` overrides applied when asked)."
    path = Path(name_or_path)
    if not path.is_file(): path = PIPELINE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(f"pipeline recipe {name_or_path!r} not found: not a file, and not one of {list_pipelines()}")
    spec = yaml.safe_load(path.read_text()) or {}
    if not isinstance(spec, dict) or "model" not in spec:
        raise ConfigError(f"pipeline recipe {path} must be a mapping with at least `model:`")
    unknown = set(spec.get("stages") or {}) - set(STAGES)
    if unknown: raise ConfigError(f"pipeline recipe {path}: unknown stage(s) {sorted(unknown)}; stages are {list(STAGES)}")
    spec.setdefault("name", path.stem)
    small_spec = spec.pop("small", None) or {}
    if small: spec = _merge(spec, small_spec)
    return spec


def _merge(base:dict, over:dict) -> dict:
    "Recursive dict merge: `over` wins; nested mappings merge."
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def write_toy_problems(data_dir:Path, # folder for {split}.jsonl
                       counts:dict[str, int], # problems per split (train, validation, test)
                       seed:int=0, # seed of the toy problem stream
                      ) -> dict[str, Path]:
    "Write the toy task's problem files (kept when already there with the right count); returns split -> path."
    from .toy import make_problems
    out = {}
    for split, n in counts.items():
        path, n = Path(data_dir) / f"{split}.jsonl", int(n)
        if not path.exists() or sum(1 for _ in path.open()) != n:
            path.parent.mkdir(parents=True, exist_ok=True)
            rows = make_problems(n, seed=seed, split=split).to_list()
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
            tmp.replace(path)
        out[split] = path
    return out


class Pipeline:
    "The five stages of one pipeline recipe, each reading the previous stage's folder under `root`."
    def __init__(self, recipe:str|Path, # pipeline recipe: `toy` (CPU default), `marco-o1`, `qwq-32b`, `r1-distill-1.5b`, `qwen3-8b`, or a YAML file
                 root:str|Path|None=None, # run folder (default `runs/<recipe>`; a fresh temporary folder when `small`)
                 small:bool=False, # few problems and steps (tests, docs builds): pass `IN_TEST` in notebooks
                ):
        self.spec, self.small = load_pipeline(recipe, small), small
        self.name = self.spec["name"]
        if root is None: root = tempfile.mkdtemp(prefix=f"o1-pruner-{self.name}-") if small else Path("runs") / self.name
        self.root = Path(root)
        self.is_toy = self.spec["model"] == "toy"

    def __repr__(self): return f"Pipeline({self.name!r}, root={str(self.root)!r}, small={self.small})"

    @property
    def model(self) -> str:
        "The reference model: a hub name or folder (`toy` is the model shipped with the package)."
        if self.is_toy:
            from .toy import reference_path
            return str(reference_path())
        return self.spec["model"]

    def path(self, stage:str) -> Path:
        "Output folder of `stage`."
        if stage not in STAGE_DIRS: raise ValueError(f"unknown stage {stage!r}; stages are {list(STAGES)}")
        return self.root / STAGE_DIRS[stage]

    @property
    def pruned_model(self) -> Path:
        "The fine-tuned model: the selected checkpoint when selection ran, else the final one."
        best = self.path("train") / "best"
        return best if (best / "config.json").exists() else self.path("train")

    def problem_files(self) -> dict[str, Path]:
        "Toy pipeline: write (once) and return the train/validation/test problem files."
        p = self.spec.get("problems") or {}
        counts = {"train": p.get("n_train", 400), "validation": p.get("n_val", 200), "test": p.get("n_test", 1000)}
        return write_toy_problems(self.root / "data", counts, int(p.get("seed", 0)))

    def config(self, stage:str) -> dict[str, Any]:
        "The complete option set of `stage`: its stage recipe, the pipeline's overrides, and the wiring between stages."
        self.path(stage)
        over = dict((self.spec.get("stages") or {}).get(stage) or {})
        recipe = over.pop("recipe", None)
        cfg = load_recipe(recipe) if recipe else {}
        prompt = self.spec.get("prompt") or {}
        cfg.update({k: prompt[k] for k in _PROMPT_KEYS.get(stage, ()) if k in prompt})
        cfg.update(over)
        model, prev = self.model, {s: str(self.path(s)) for s in STAGES}
        if stage == "sample":
            cfg.update(model=model, output_dir=prev["sample"])
            if self.is_toy: cfg["dataset"] = str(self.problem_files()["train"])
        elif stage == "analyze":
            cfg.update(store=prev["sample"], output_dir=prev["analyze"], tokenizer=model)
        elif stage == "build-dataset":
            cfg.update(store=prev["sample"], output_dir=prev["build-dataset"], reference_model=model)
            cfg.setdefault("system", (self.spec.get("train_prompt") or TRAIN_PROMPT).get("system"))
            for k, v in scoring_numerics(self.config("train")).items(): cfg.setdefault(k, v)
        elif stage == "train":
            cfg.update(model_name_or_path=model, dataset_dir=prev["build-dataset"], output_dir=prev["train"])
        elif stage == "evaluate":
            cfg.update(models=[f"base={model}", f"o1-pruner={self.pruned_model}"], output_dir=prev["evaluate"])
            if self.is_toy: cfg["datasets"] = [f"toy-test={self.problem_files()['test']}"]
        return cfg

    def _marker(self, stage:str) -> Path: return self.root / "done" / f"{stage}.json"

    def done(self, stage:str) -> bool:
        "Whether `stage` finished with the configuration it would run with now."
        m = self._marker(stage)
        return m.exists() and json.loads(m.read_text()).get("config") == json.loads(json.dumps(self.config(stage), default=str))

    def command(self, stage:str) -> str:
        "The shell command equivalent to running `stage`."
        return f"o1-pruner {stage} --recipe {self.root / 'configs' / (stage + '.yaml')}"

    def stage(self, stage:str, # one of `STAGES`
              force:bool=False, # rerun even if done with the same configuration
             ) -> Path:
        "Run `stage` (after missing earlier stages, for CPU pipelines) and return its output folder."
        if stage not in STAGES: raise ValueError(f"unknown stage {stage!r}; stages are {list(STAGES)}")
        for prev in STAGES[:STAGES.index(stage)]:
            if self.done(prev) or prev == "analyze": continue
            if not self.is_toy:
                raise FileNotFoundError(f"stage {stage!r} needs the output of stage {prev!r} ({self.path(prev)}): run notebook "
                                        f"{STAGE_NOTEBOOKS[prev]} with RECIPE = {self.name!r} first, or `{self.command(prev)}`")
            print(f"[pipeline] {prev} has not run in {self.root}: running it first")
            self.stage(prev)
        if self.done(stage) and not force:
            print(f"[pipeline] {stage}: done already ({self.path(stage)}); force=True reruns it")
            return self.path(stage)
        cfg = self.config(stage)
        conf = self.root / "configs" / f"{stage}.yaml"
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(yaml.safe_dump(cfg, sort_keys=False))
        print(f"$ {self.command(stage)}", flush=True)
        threads = self.spec.get("threads")
        if threads:
            import torch
            torch.set_num_threads(int(threads))
        rc = run_stage(stage, ["--recipe", str(conf)])
        if rc: raise RuntimeError(f"stage {stage!r} failed (exit code {rc}); its configuration: {conf}")
        self._marker(stage).parent.mkdir(parents=True, exist_ok=True)
        self._marker(stage).write_text(json.dumps({"config": cfg}, default=str, indent=1))
        return self.path(stage)
