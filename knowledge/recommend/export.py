"""Hand the top-k recommended configs to the tuner the user already runs (issue 18, part 3).

`export(rec, fmt, space=...)` turns a `Recommendation` into text, one format at a time:

- `optuna`: a runnable Python snippet that creates a study and `enqueue_trial`s the top-k, so
  the zero-shot picks are the study's first trials. The parameter dicts use exactly the names an
  objective that draws its config with metallmix's search space uses (`trial_params`: the names
  of `knowledge.sweeps.objective.suggest_config` / `SearchSpace.suggest`, e.g. `model`, `lr`,
  `weight_decay_nonzero` + `weight_decay`), and every value lies inside the space's distributions.
- `ray`: JSON with Ray Tune's `points_to_evaluate` (one flat `TrainConfig` dict per config, what
  a trainable receives as `config`), the search space in Ray Tune words and a usage snippet.
- `json`: the top-k with their predictions (accuracy and 80 % interval, time, device), support /
  extrapolation flags, the budget and each config's Optuna parameters.
- `command`: a shell script with one ready `metallmix train ...` command line per config.

A config outside the chosen space (e.g. a GPU model when exporting for the CPU space) is never
dropped silently: it is left out of what a tuner would enqueue and listed, with the reason, in the
export (a comment in the snippets, `outside_space` in the JSON). The same holds for configs the
`metallmix train` launcher cannot run (a model without timm weights, the kNN scheme).
Pure functions of the `Recommendation`: nothing here trains, fits or needs Optuna or Ray.
"""

from __future__ import annotations

import json
import math
import os
import shlex
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from knowledge.errors import ConfigError
from knowledge.metalearner.ranking import RankedConfig
from knowledge.recommend.result import Recommendation, budget_text
from knowledge.recommend.text import _time, config_label
from knowledge.search_space import (
    CPU_SPACE,
    MODELS,
    SPACE,
    TRAINABLE_SCHEMES,
    Categorical,
    FloatRange,
    IntRange,
    SearchSpace,
    TrainConfig,
)

FORMATS: tuple[str, ...] = ("optuna", "ray", "json", "command")
SPACES: dict[str, SearchSpace] = {"full": SPACE, "cpu": CPU_SPACE}
# the file each format gets when several are written into one folder
FILE_NAMES: dict[str, str] = {"optuna": "optuna_warm_start.py", "ray": "ray_points.json",
                              "json": "recommendation.json", "command": "train_commands.sh"}
SCHEMA = "metallmix-export/1"
DATASET_PLACEHOLDER = "DATASET"


def check_formats(formats: Iterable[str]) -> list[str]:
    """The formats asked for, in order, without repeats; ConfigError naming the allowed ones.
    One value may hold several, comma-separated ('optuna,json')."""
    out: list[str] = []
    for item in formats:
        for name in str(item).split(","):
            name = name.strip().lower()
            if not name:
                continue
            if name not in FORMATS:
                raise ConfigError(f"unknown export format {name!r}; allowed: {', '.join(FORMATS)}")
            if name not in out:
                out.append(name)
    if not out:
        raise ConfigError(f"no export format given; allowed: {', '.join(FORMATS)}")
    return out


def get_space(space: str | SearchSpace) -> SearchSpace:
    """A search space by name ('full', 'cpu') or as given; ConfigError naming the known ones."""
    if isinstance(space, SearchSpace):
        return space
    try:
        return SPACES[str(space).strip().lower()]
    except KeyError:
        raise ConfigError(f"unknown search space {space!r}; known: {', '.join(SPACES)}") from None


# --- one config in a tuner's words ---------------------------------------------------------------

def trial_params(config: TrainConfig, space: SearchSpace = SPACE) -> dict[str, Any]:
    """The Optuna parameters under which `suggest_config(trial, space, ...)` (the sweeps' objective)
    draws exactly `config`: every search-space field that is not fixed by `space.fixed`, by its
    name; a field that may be 0 (weight decay) as `<name>_nonzero` plus `<name>` when not 0.
    `pretrained` is always given: an objective that does not ask for it (no pretrained weights
    for the model) ignores it. Call `outside_space` first: values outside `space` are not
    checked here."""
    values = config.model_dump()
    params: dict[str, Any] = {}
    for key, param in space.params.items():
        if key in space.fixed:
            continue
        value = values[key]
        if isinstance(param, FloatRange) and param.allow_zero:
            nonzero = value != 0
            params[f"{key}_nonzero"] = nonzero
            if nonzero:
                params[key] = float(value)
        elif isinstance(param, FloatRange):
            params[key] = float(value)
        else:
            params[key] = value
    return params


def config_from_params(params: dict[str, Any]) -> dict[str, Any]:
    """The `TrainConfig` fields of Optuna parameters made by `trial_params` (the inverse)."""
    out = dict(params)
    for key in [k for k in out if k.endswith("_nonzero")]:
        field = key.removesuffix("_nonzero")
        if not out.pop(key):
            out[field] = 0.0
    return out


def outside_space(config: TrainConfig, space: SearchSpace = SPACE) -> list[str]:
    """Why `config` is not a point of `space` ('model: 'resnet50' is not allowed; allowed: ...'),
    one reason per field; empty when it is inside. A field pinned by `space.fixed` to another
    value counts as outside."""
    values = config.model_dump()
    reasons = space.errors(values)
    for key, fixed in space.fixed.items():
        if values.get(key) != fixed:
            reasons.append(f"{key}: {values.get(key)!r} is not allowed; the space fixes it to {fixed!r}")
    return reasons


def not_trainable(config: TrainConfig) -> list[str]:
    """Why `metallmix train` cannot run `config` (the launcher's `check_config` rules); empty when
    it can."""
    reasons = []
    spec = MODELS[config.model]
    if not spec.trainable:
        reasons.append(f"model: {config.model} has no timm model; the launcher cannot train it")
    if config.scheme not in TRAINABLE_SCHEMES:
        reasons.append(f"scheme: {config.scheme!r} is not trained by the launcher; "
                       f"allowed: {', '.join(TRAINABLE_SCHEMES)}")
    return reasons


def ray_domain(param: Any) -> str:
    """A search-space parameter as Ray Tune code ('tune.loguniform(0.0001, 0.03)')."""
    if isinstance(param, Categorical):
        return f"tune.choice({list(param.choices)!r})"
    if isinstance(param, IntRange):  # Ray's randint excludes its upper end
        return f"tune.{'lograndint' if param.log else 'randint'}({param.low!r}, {param.high + 1!r})"
    if isinstance(param, FloatRange):
        return f"tune.{'loguniform' if param.log else 'uniform'}({param.low!r}, {param.high!r})"
    raise TypeError(f"not a search-space parameter: {param!r}")


# --- the formats ---------------------------------------------------------------------------------

def _number(x: float | None, digits: int = 4) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), digits)


def _entry(r: RankedConfig, space: SearchSpace) -> dict[str, Any]:
    outside = outside_space(r.config, space)
    return {
        "rank": r.rank,
        "label": config_label(r),
        "config": r.config.model_dump(mode="json"),
        "predicted_acc": _number(r.predicted_acc),
        "acc_lo": _number(r.acc_lo),
        "acc_hi": _number(r.acc_hi),
        "predicted_seconds": _number(r.predicted_seconds, 1),
        "time_is_estimate": r.time_is_estimate,
        "device": r.device,
        "supported": r.supported,
        "support": r.support.text() if r.support is not None else None,
        "extrapolated": list(r.extrapolated),
        "in_space": not outside,
        "outside_space": outside,
        "optuna_params": None if outside else trial_params(r.config, space),
        "trainable": not not_trainable(r.config),
    }


def _split(rec: Recommendation, space: SearchSpace) -> tuple[list[RankedConfig], list[tuple[RankedConfig, list[str]]]]:
    inside, outside = [], []
    for r in rec.top:
        reasons = outside_space(r.config, space)
        if reasons:
            outside.append((r, reasons))
        else:
            inside.append(r)
    return inside, outside


def _header(rec: Recommendation, space: SearchSpace) -> list[str]:
    what = rec.dataset or "your dataset"
    return [f"MetaLLMiX: top {len(rec.top)} of {rec.n_candidates} configs for {what}",
            f"budget: {budget_text(rec)}; search space: {space.name!r}"]


def _prediction(r: RankedConfig) -> str:
    seconds = "unknown time" if r.predicted_seconds is None else f"~{_time(r)}"
    flag = "" if r.supported else ", extrapolates"
    return (f"{r.rank}. {config_label(r)}: predicted {100 * r.predicted_acc:.1f} % "
            f"[{100 * r.acc_lo:.1f}-{100 * r.acc_hi:.1f}], {seconds} on {r.device}{flag}")


def _outside_lines(outside: Sequence[tuple[RankedConfig, list[str]]], space: SearchSpace,
                   what: str) -> list[str]:
    lines = []
    if outside:
        lines.append(f"{len(outside)} of the top configs lie outside the {space.name!r} search space "
                     f"and are not {what}:")
        for r, reasons in outside:
            lines.append(f"  #{r.rank} {config_label(r)}: {'; '.join(reasons)}")
    return lines


def to_json(rec: Recommendation, space: str | SearchSpace = "full") -> str:
    """The top-k with predictions, flags, budget and Optuna parameters, as JSON."""
    space = get_space(space)
    data = {"schema": SCHEMA, "dataset": rec.dataset,
            "budget": rec.budget.model_dump(mode="json") if rec.budget is not None else None,
            "budget_text": budget_text(rec), "search_space": space.name,
            "n_candidates": rec.n_candidates, "extrapolates": rec.extrapolates,
            "configs": [_entry(r, space) for r in rec.top]}
    return json.dumps(data, indent=2) + "\n"


def to_optuna(rec: Recommendation, space: str | SearchSpace = "full") -> str:
    """A runnable Python snippet: an Optuna study with the top-k enqueued (configs outside the
    space listed in a comment, not enqueued: Optuna would refuse their values)."""
    space = get_space(space)
    inside, outside = _split(rec, space)
    var = {id(SPACE): "SPACE", id(CPU_SPACE): "CPU_SPACE"}.get(id(space))
    lines = ['"""Warm-start an Optuna study with MetaLLMiX\'s recommendation.', ""]
    lines += _header(rec, space)
    lines += ["", "The parameter names are those of metallmix's search space: an objective that draws its",
              "config with knowledge.sweeps.objective.suggest_config (as `metallmix sweep` does) runs",
              "these configs as the study's first trials (where the objective finds no pretrained",
              "weights for a model it trains from scratch, as metallmix sweep does).", '"""', "", "import optuna", ""]
    lines += [f"# {line}" for line in _outside_lines(outside, space, "enqueued")] + ["WARM_START = ["]
    for r in inside:
        lines.append(f"    # {_prediction(r)}")
        lines.append(f"    {trial_params(r.config, space)!r},")
    lines += ["]", "",
              'study = optuna.create_study(direction="maximize")  # or your own study / storage',
              "for params in WARM_START:",
              "    study.enqueue_trial(params, skip_if_exists=True)", "",
              "# The objective, e.g.:",
              f"# from knowledge.search_space import {var or 'SearchSpace  # space: the one exported for'}",
              "# from knowledge.sweeps.objective import suggest_config",
              "#",
              "# def objective(trial):",
              f"#     config = suggest_config(trial, {var or 'space'}, lambda model: True)  # a TrainConfig",
              "#     return train_and_validate(config)  # your training: the validation accuracy",
              "#",
              "# study.optimize(objective, n_trials=50)", ""]
    return "\n".join(lines)


def to_ray(rec: Recommendation, space: str | SearchSpace = "full") -> str:
    """JSON: Ray Tune's `points_to_evaluate`, the param space in Ray Tune words, what lies outside
    the space and a usage snippet."""
    space = get_space(space)
    inside, outside = _split(rec, space)
    param_space = {key: ray_domain(param) for key, param in space.params.items()
                   if key not in space.fixed}
    param_space.update({key: repr(value) for key, value in space.fixed.items()})
    zero = [k for k, p in space.params.items() if isinstance(p, FloatRange) and p.allow_zero]
    snippet = "\n".join([
        "import json", "from ray import tune",
        "from ray.tune.search.basic_variant import BasicVariantGenerator", "",
        'points = json.load(open("ray_points.json"))["points_to_evaluate"]',
        "param_space = {" + ", ".join(f"{k!r}: {v}" for k, v in param_space.items()) + "}",
        "tuner = tune.Tuner(",
        "    trainable,  # your function: trainable(config) trains TrainConfig(**config), reports accuracy",
        "    param_space=param_space,",
        "    tune_config=tune.TuneConfig(",
        '        metric="val_acc", mode="max", num_samples=50,',
        "        search_alg=BasicVariantGenerator(points_to_evaluate=points),",
        "        # or: search_alg=OptunaSearch(points_to_evaluate=points)"
        "  (from ray.tune.search.optuna import OptunaSearch)",
        "    ),", ")", "results = tuner.fit()",
    ])
    data = {
        "schema": SCHEMA,
        "dataset": rec.dataset,
        "budget_text": budget_text(rec),
        "search_space": space.name,
        "points_to_evaluate": [r.config.model_dump(mode="json") for r in inside],
        "predictions": [{"rank": r.rank, "predicted_acc": _number(r.predicted_acc),
                         "acc_lo": _number(r.acc_lo), "acc_hi": _number(r.acc_hi),
                         "predicted_seconds": _number(r.predicted_seconds, 1),
                         "supported": r.supported} for r in inside],
        "outside_space": [{"rank": r.rank, "config": r.config.model_dump(mode="json"),
                           "reasons": reasons} for r, reasons in outside],
        "param_space": param_space,
        "notes": [f"{k}: 0 is also allowed (no {k.replace('_', ' ')}); a point may set it to 0"
                  for k in zero],
        "snippet": snippet,
    }
    return json.dumps(data, indent=2) + "\n"


def train_args(config: TrainConfig, dataset: str = DATASET_PLACEHOLDER) -> list[str]:
    """`metallmix train` arguments that run `config` on `dataset` (every field given, so the
    command does not depend on the launcher's defaults)."""
    return [
        "metallmix", "train", dataset, "--model", config.model,
        "--pretrained" if config.pretrained else "--no-pretrained",
        "--scheme", config.scheme, "--resolution", str(config.resolution),
        "--optimizer", config.optimizer, "--lr", repr(float(config.lr)),
        "--weight-decay", repr(float(config.weight_decay)), "--batch-size", str(config.batch_size),
        "--epochs", str(config.epochs), "--augmentation", config.augmentation,
        "--label-smoothing", repr(float(config.label_smoothing)),
    ]


def to_commands(rec: Recommendation, dataset: str | None = None,
                space: str | SearchSpace = "full") -> str:
    """A shell script: one `metallmix train` line per top config (best first). Configs the launcher
    cannot train, or outside `space`, are listed in comments instead."""
    space = get_space(space)
    target = dataset or rec.dataset or DATASET_PLACEHOLDER
    lines = ["#!/bin/sh"] + [f"# {line}" for line in _header(rec, space)]
    if target == DATASET_PLACEHOLDER:
        lines.append(f"# replace {DATASET_PLACEHOLDER} with your dataset (.npz, image folder or named source)")
    inside, outside = _split(rec, space)
    skipped = [(r, not_trainable(r.config)) for r in inside]
    lines += [f"# {line}" for line in _outside_lines(outside, space, "listed as commands")]
    for r, reasons in skipped:
        if reasons:
            lines.append(f"# #{r.rank} {config_label(r)}: not runnable by metallmix train: {'; '.join(reasons)}")
    for r, reasons in skipped:
        if not reasons:
            lines += [f"# {_prediction(r)}", shlex.join(train_args(r.config, target))]
    return "\n".join(lines) + "\n"


def export(rec: Recommendation, fmt: str, *, space: str | SearchSpace = "full",
           dataset: str | None = None) -> str:
    """`rec` in one of `FORMATS`; ConfigError for an unknown format or space."""
    names = check_formats([fmt])
    if len(names) != 1:
        raise ConfigError(f"one export format at a time, not {fmt!r}")
    if names[0] == "command":
        return to_commands(rec, dataset=dataset, space=space)
    return {"optuna": to_optuna, "ray": to_ray, "json": to_json}[names[0]](rec, space=space)


def outside_warnings(rec: Recommendation, space: str | SearchSpace = "full") -> list[str]:
    """One line per top config outside `space` (for the CLI to print on stderr)."""
    space = get_space(space)
    return [f"#{r.rank} {config_label(r)} is outside the {space.name!r} search space "
            f"({'; '.join(reasons)}): listed, not enqueued" for r, reasons in _split(rec, space)[1]]


def write_atomic(path: str | Path, text: str) -> Path:
    """Write `text` to `path` through a temporary file in the same folder and `os.replace`, so a
    reader never sees half a file; ConfigError (one line) when the folder cannot be written."""
    path = Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"export file {path}: cannot write there: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ConfigError(f"export file {path}: cannot write it: {exc.strerror or exc}") from None
    return path


def export_paths(out: str | Path, formats: Sequence[str]) -> dict[str, Path]:
    """Where each format goes: one format -> `out` itself; several -> `out` is a folder holding
    `FILE_NAMES[fmt]` for each."""
    out = Path(out).expanduser()
    if len(formats) == 1:
        if out.is_dir():
            return {formats[0]: out / FILE_NAMES[formats[0]]}
        return {formats[0]: out}
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--export-out {out}: several formats go into a folder, but this is a file")
    return {fmt: out / FILE_NAMES[fmt] for fmt in formats}
