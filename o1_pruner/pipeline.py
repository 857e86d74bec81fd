"""One recipe name runs the whole pipeline: the notebooks' configuration cell, the demo's runner.

A *pipeline recipe* (`o1_pruner/recipes/pipelines/<name>.yaml`) names the model and, per stage, a stage recipe and/or
option overrides. `Pipeline(name).stage("sample")` writes the stage's full configuration to `<root>/configs/`, runs
the same function as `o1-pruner sample --recipe <that file>`, and records it as done; every stage reads the previous
stage's folder under `<root>` (default `runs/<name>`). A recipe can also hold

* `problems:` generated problem sets (`source: toy` and the number of problems per split), written once under
  `<root>/data`; options name them as `@problems.train`, `@problems.validation`, `@problems.test`;
* `variants:` named overrides of build-dataset and train (each trains into its own folder; a variant whose `method`
  is a baseline trains from the sample store);
* `run_missing_stages: true`, for pipelines cheap enough (the CPU toy) that a stage runs the earlier ones it needs;
* `small:` overrides for tests and docs builds (`small=True`; the notebooks pass `IN_TEST`).

`model: toy` is the toy reference shipped with the package; any other value is a Hub id or a folder.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from .baselines import BASELINE_TRAIN_METHODS, BaselineArguments
from .config import RECIPE_DIR, ConfigError, load_recipe
from .models import ModelArguments, TrainingConfig
from .stages import STAGES as STAGE_TABLE, run_stage
from .toy import make_problems, reference_path

PIPELINE_DIR = RECIPE_DIR / "pipelines"
STAGES = tuple(STAGE_TABLE)
STAGE_DIRS = {"sample": "samples", "analyze": "analysis", "build-dataset": "rewarded", "train": "checkpoint",
              "evaluate": "eval"}
STAGE_NOTEBOOKS = {"sample": "05_presampling", "analyze": "06_difficulty", "build-dataset": "07_reward",
                   "train": "08_finetune", "evaluate": "09_evaluation"}
_PROMPT_KEYS = {"sample": ("system", "user_template", "enable_thinking"), "build-dataset": ("enable_thinking",),
                "evaluate": ("system", "user_template", "enable_thinking")}
TRAIN_PROMPT = {"system": "marco"}   # the reference code's: its system prompt and the bare problem, for every model
SHIPPED_MODELS = {"toy": reference_path}
PROBLEM_SOURCES = {"toy": make_problems}
SPLITS = ("train", "validation", "test")
_BASELINE_FIELDS = {f.name for t in (ModelArguments, BaselineArguments, TrainingConfig) for f in dataclasses.fields(t)}


def scoring_numerics(train_cfg:dict) -> dict:
    "build-dataset's dtype/autocast that compute as the training described by `train_cfg` does (step-0 ratio 1)."
    half = "bfloat16" if train_cfg.get("bf16") else "float16" if train_cfg.get("fp16") else None
    if not half: return {"dtype": "float32", "autocast": "none"}
    return {"dtype": half, "autocast": "none"} if train_cfg.get("deepspeed") else {"dtype": "float32", "autocast": half}


def list_pipelines() -> list[str]:
    "Names of the shipped pipeline recipes."
    return sorted(p.stem for p in PIPELINE_DIR.glob("*.yaml"))


def _merge(base:dict, over:dict) -> dict:
    "Recursive dict merge: `over` wins; nested mappings merge."
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


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
    if unknown:
        raise ConfigError(f"pipeline recipe {path}: unknown stage(s) {sorted(unknown)}; stages are {list(STAGES)}")
    spec.setdefault("name", path.stem)
    small_spec = spec.pop("small", None) or {}
    return _merge(spec, small_spec) if small else spec


def write_problems(data_dir:Path, # folder for {split}.jsonl
                   spec:dict, # the recipe's `problems:` block: source, n_train, n_val, n_test, seed
                  ) -> dict[str, Path]:
    "Write a generated problem set's files once (kept when already there with the right count); split -> path."
    make = PROBLEM_SOURCES.get(spec.get("source", "toy"))
    if make is None: raise ConfigError(f"problems.source {spec.get('source')!r}: one of {list(PROBLEM_SOURCES)}")
    counts = dict(zip(SPLITS, (spec.get("n_train", 400), spec.get("n_val", 200), spec.get("n_test", 1000))))
    out = {}
    for split, n in counts.items():
        path, n = Path(data_dir) / f"{split}.jsonl", int(n)
        if not path.exists() or sum(1 for _ in path.open()) != n:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in make(n, seed=int(spec.get("seed", 0)), split=split)))
            tmp.replace(path)
        out[split] = path
    return out


class Pipeline:
    "The five stages of one pipeline recipe, each reading the previous stage's folder under `root`."
    def __init__(self, recipe:str|Path, # pipeline recipe: `toy` (the CPU default), `marco-o1`, ..., or a YAML file
                 root:str|Path|None=None, # run folder (default `runs/<recipe>`; a fresh temporary folder when `small`)
                 small:bool=False, # few problems and steps (tests, docs builds): pass `IN_TEST` in notebooks
                 model:str|Path|None=None, # start from this model instead of the recipe's (a later round's reference)
                 overrides:dict|None=None, # merged into the recipe (e.g. {"problems": {"seed": 1}})
                 data_dir:str|Path|None=None, # where the generated problems are written (default `<root>/data`)
                ):
        self.spec, self.small = _merge(load_pipeline(recipe, small), overrides or {}), small
        self.name = self.spec["name"]
        if root is None: root = tempfile.mkdtemp(prefix=f"o1-pruner-{self.name}-") if small else Path("runs", self.name)
        self.root, self._model = Path(root), model
        self.data_dir = Path(data_dir) if data_dir is not None else self.root / "data"

    def __repr__(self): return f"Pipeline({self.name!r}, root={str(self.root)!r}, small={self.small})"

    @property
    def model(self) -> str:
        "The reference model: a hub name or folder (`toy`: the model shipped with the package)."
        if self._model is not None: return str(self._model)
        m = self.spec["model"]
        return str(SHIPPED_MODELS[m]()) if m in SHIPPED_MODELS else m

    def path(self, stage:str, variant:str|None=None) -> Path:
        "Output folder of `stage` (of `variant` for build-dataset and train)."
        if stage not in STAGE_DIRS: raise ValueError(f"unknown stage {stage!r}; stages are {list(STAGES)}")
        name = STAGE_DIRS[stage] + (f"-{variant}" if variant and stage in ("build-dataset", "train") else "")
        return self.root / name

    def pruned_model(self, variant:str|None=None) -> Path:
        "The fine-tuned model of `variant`: the selected checkpoint when selection ran, else the final one."
        best = self.path("train", variant) / "best"
        return best if (best / "config.json").exists() else self.path("train", variant)

    def problem_files(self) -> dict[str, Path]:
        "The recipe's generated problem sets, written once under `data_dir` (none without `problems:`)."
        return write_problems(self.data_dir, self.spec["problems"]) if self.spec.get("problems") else {}

    def _resolve(self, value):
        "`@problems.<split>` (also inside `label=@problems.<split>`) as the path of that generated problem file."
        if isinstance(value, list): return [self._resolve(v) for v in value]
        if not isinstance(value, str) or "@problems." not in value: return value
        head, _, split = value.rpartition("@problems.")
        files = self.problem_files()
        if split not in files: raise ConfigError(f"{value!r}: the recipe has no generated {split!r} problems")
        return head + str(files[split])

    def config(self, stage:str, # one of `STAGES`
               variant:str|None=None, # a key of the recipe's `variants` (build-dataset and train)
               **overrides, # more options, after everything else
              ) -> dict[str, Any]:
        "The complete options of `stage`: stage recipe, pipeline and variant overrides, and the wiring between stages."
        self.path(stage)
        if variant is not None and variant not in (self.spec.get("variants") or {}):
            raise ConfigError(f"unknown variant {variant!r}; the recipe's: {list(self.spec.get('variants') or {})}")
        over = dict((self.spec.get("stages") or {}).get(stage) or {})
        vover = ((self.spec.get("variants") or {}).get(variant) or {}).get(stage) or {}
        if vover.get("method") in BASELINE_TRAIN_METHODS:   # a baseline shares the training arguments, not O1's options
            over = {k: v for k, v in over.items() if k in _BASELINE_FIELDS}
        over.update(vover)
        recipe = over.pop("recipe", None)
        cfg = load_recipe(recipe) if recipe else {}
        prompt = self.spec.get("prompt") or {}
        cfg.update({k: prompt[k] for k in _PROMPT_KEYS.get(stage, ()) if k in prompt})
        cfg.update(over)
        self._wire(stage, variant, cfg)
        cfg.update(overrides)
        return {k: self._resolve(v) for k, v in cfg.items()}

    def _wire(self, stage:str, variant:str|None, cfg:dict):
        "Connect `stage` to the previous stages' folders (and its variant's)."
        store = str(self.path("sample"))
        if stage == "sample": cfg.update(model=self.model, output_dir=store)
        elif stage == "analyze": cfg.update(store=store, output_dir=str(self.path("analyze")), tokenizer=self.model)
        elif stage == "build-dataset":
            cfg.update(store=store, output_dir=str(self.path(stage, variant)), reference_model=self.model)
            cfg.setdefault("system", (self.spec.get("train_prompt") or TRAIN_PROMPT).get("system"))
            for k, v in scoring_numerics(self.config("train", variant)).items(): cfg.setdefault(k, v)
        elif stage == "train":
            cfg.update(model_name_or_path=self.model, output_dir=str(self.path(stage, variant)))
            if cfg.get("method") in BASELINE_TRAIN_METHODS:
                cfg.update(store_dir=store)
                cfg.setdefault("system", (self.spec.get("train_prompt") or TRAIN_PROMPT).get("system"))
            else: cfg.update(dataset_dir=str(self.path("build-dataset", variant)))
        elif stage == "evaluate":
            cfg.setdefault("models", [f"base={self.model}", f"o1-pruner={self.pruned_model()}"])
            cfg.update(output_dir=str(self.path("evaluate")))

    def _name(self, stage:str, tag:str|None) -> str: return f"{stage}{'-' + tag if tag else ''}"
    def _marker(self, stage:str, tag:str|None=None) -> Path:
        return self.root / "done" / (self._name(stage, tag) + ".json")
    def _config_file(self, stage:str, tag:str|None=None) -> Path:
        return self.root / "configs" / f"{self._name(stage, tag)}.yaml"

    def done(self, stage:str, variant:str|None=None, tag:str|None=None, **overrides) -> bool:
        "Whether `stage` (of `variant`, or under `tag`) finished with the configuration it would run with now."
        m = self._marker(stage, tag or variant)
        now = json.loads(json.dumps(self.config(stage, variant, **overrides), default=str))
        return m.exists() and json.loads(m.read_text()).get("config") == now

    def _changed(self, conf:Path, cfg:dict) -> bool:
        "Whether `conf` (the configuration a stage last ran with, finished or not) differs from `cfg`."
        if not conf.exists(): return False
        return yaml.safe_load(conf.read_text()) != json.loads(json.dumps(cfg, default=str))

    def command(self, stage:str, tag:str|None=None) -> str:
        "The shell command equivalent to running `stage` (of a variant or tag)."
        return f"o1-pruner {stage} --recipe {self._config_file(stage, tag)}"

    def _needs(self, stage:str, variant:str|None) -> list[tuple[str, str|None]]:
        "The earlier stages (and variants) whose folders `stage` reads."
        if stage == "sample": return []
        if stage in ("analyze", "build-dataset"): return [("sample", None)]
        if stage == "train":
            method = self.config("train", variant).get("method")
            if method in BASELINE_TRAIN_METHODS: return [("sample", None)]
            return [("sample", None), ("build-dataset", variant)]
        return [("sample", None), ("build-dataset", None), ("train", None)]

    def stage(self, stage:str, # one of `STAGES`
              variant:str|None=None, # a key of the recipe's `variants` (build-dataset and train)
              force:bool=False, # rerun even if done with the same configuration
              tag:str|None=None, # names this run's configuration and done marker (default: the variant)
              **overrides, # more options of the stage (e.g. `models=` for evaluate)
             ) -> Path:
        "Run `stage` (after missing earlier stages, where the recipe allows) and return its output folder."
        if stage not in STAGES: raise ValueError(f"unknown stage {stage!r}; stages are {list(STAGES)}")
        needs = self._needs(stage, variant) if "models" not in overrides else []
        for prev, pv in needs:
            if self.done(prev, pv): continue
            if not self.spec.get("run_missing_stages"):
                raise FileNotFoundError(f"stage {stage!r} needs the output of stage {prev!r} ({self.path(prev, pv)}): "
                                        f"run notebook {STAGE_NOTEBOOKS[prev]} with RECIPE = {self.name!r} first, or "
                                        f"`{self.command(prev, pv)}`")
            print(f"[pipeline] {prev} has not run in {self.root}: running it first")
            self.stage(prev, pv)
        tag = tag or variant
        out = Path(overrides.get("output_dir") or self.path(stage, variant))
        if self.done(stage, variant, tag, **overrides) and not force:
            print(f"[pipeline] {stage}: done already ({out}); force=True reruns it")
            return out
        cfg = self.config(stage, variant, **overrides)
        conf = self._config_file(stage, tag)
        args = ["--recipe", str(conf)]
        if stage == "train" and "resume_from_checkpoint" not in cfg and (force or self._changed(conf, cfg)):
            args += ["--resume_from_checkpoint", "false"]   # checkpoints of another configuration: start over
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(yaml.safe_dump(json.loads(json.dumps(cfg, default=str)), sort_keys=False))
        print(f"$ {self.command(stage, tag)}{' ' + ' '.join(args[2:]) if args[2:] else ''}", flush=True)
        if self.spec.get("threads"):
            import torch
            torch.set_num_threads(int(self.spec["threads"]))
        t0 = time.time()
        rc = run_stage(stage, args)
        if rc: raise RuntimeError(f"stage {stage!r} failed (exit code {rc}); its configuration: {conf}")
        self._marker(stage, tag).parent.mkdir(parents=True, exist_ok=True)
        self._marker(stage, tag).write_text(json.dumps({"config": cfg, "seconds": round(time.time() - t0, 1)},
                                                       default=str, indent=1))
        return out

    def seconds(self, stage:str, tag:str|None=None) -> float|None:
        "Wall seconds of the finished run of `stage` (under `tag`), or None."
        m = self._marker(stage, tag)
        return json.loads(m.read_text()).get("seconds") if m.exists() else None
