"""Baselines of the leave-one-dataset-out benchmark (`eval.lodo`) and the config distance they share.

Every baseline chooses among the configs *recorded* on the held-out task (the benchmark can only
score configs whose outcome is known). A baseline that proposes a config from elsewhere (the
single-best config of the training datasets, the best config of the nearest dataset, a point
suggested by TPE) is mapped onto the task's nearest recorded config by `config_distance`:

    d = 8 x [model differs] (6 when the two models are of the same family)
      + 4 x [pretrained differs] + 4 x [scheme differs] + 1 x [optimizer differs]
      + 2 x |log2 resolution ratio|
      + 1 x |log10 lr ratio| + 0.5 x |log10 weight-decay ratio| (weight decay floored at 1e-7)
      + 0.5 x |log2 batch-size ratio| + 0.5 x |log2 epochs ratio|
      + 0.5 x |augmentation level difference| + 2 x |label-smoothing difference|

So the model, pretrained weights and scheme decide first, then the resolution (one octave weighs
as much as half a changed scheme), then the hyperparameters; ties go to the first config in the
task's (sorted, deterministic) order.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from knowledge.search_space import MODELS

CONFIG_FIELDS: tuple[str, ...] = (
    "model", "pretrained", "scheme", "resolution", "optimizer", "lr", "weight_decay", "batch_size",
    "epochs", "augmentation", "label_smoothing",
)
CATEGORICAL_FIELDS: tuple[str, ...] = ("model", "pretrained", "scheme", "optimizer", "augmentation")
AUGMENTATION_LEVELS: dict[str, int] = {"none": 0, "light": 1, "strong": 2}
WD_FLOOR = 1e-7
_FAMILY = {name: spec.family for name, spec in MODELS.items()}


def config_key(config: Mapping[str, Any]) -> str:
    """A stable text key of a config (`field=value|...`, the `TrainConfig.key()` layout)."""
    parts = []
    for name in CONFIG_FIELDS:
        value = config.get(name)
        if isinstance(value, (float, np.floating)) and float(value).is_integer() and name in (
                "resolution", "batch_size", "epochs"):
            value = int(value)
        if isinstance(value, np.generic):
            value = value.item()
        parts.append(f"{name}={value}")
    return "|".join(parts)


def _log(values: np.ndarray, base: float, floor: float | None = None) -> np.ndarray:
    v = values.astype("float64")
    if floor is not None:
        v = np.maximum(v, floor)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(v) / math.log(base)


def config_distance(target: Mapping[str, Any], configs: pd.DataFrame) -> np.ndarray:
    """Distance (module doc) from one config to each row of `configs` (columns `CONFIG_FIELDS`).

    Missing values on either side add nothing for that field.
    """
    n = len(configs)
    d = np.zeros(n)

    def differs(name: str) -> np.ndarray:
        value = target.get(name)
        if value is None or name not in configs:
            return np.zeros(n)
        col = configs[name].astype("object").to_numpy()
        return np.array([c is not None and c == c and c != value for c in col], dtype=float)

    model_diff = differs("model")
    same_family = np.array([_FAMILY.get(m) is not None and _FAMILY.get(m) == _FAMILY.get(
        target.get("model")) for m in configs.get("model", pd.Series([None] * n))], dtype=float)
    d += model_diff * (8.0 - 2.0 * same_family)
    d += 4.0 * differs("pretrained") + 4.0 * differs("scheme") + 1.0 * differs("optimizer")

    def numeric(name: str, weight: float, base: float | None, floor: float | None = None) -> None:
        value = target.get(name)
        if value is None or name not in configs:
            return
        col = pd.to_numeric(configs[name], errors="coerce").to_numpy("float64")
        ref = np.full(n, float(value))
        if base is None:
            diff = np.abs(col - ref)
        else:
            diff = np.abs(_log(col, base, floor) - _log(ref, base, floor))
        d[:] += weight * np.nan_to_num(diff, nan=0.0, posinf=0.0)

    numeric("resolution", 2.0, 2.0)
    numeric("lr", 1.0, 10.0, 1e-12)
    numeric("weight_decay", 0.5, 10.0, WD_FLOOR)
    numeric("batch_size", 0.5, 2.0)
    numeric("epochs", 0.5, 2.0)
    numeric("label_smoothing", 2.0, None)
    aug = target.get("augmentation")
    if aug in AUGMENTATION_LEVELS and "augmentation" in configs:
        levels = configs["augmentation"].map(AUGMENTATION_LEVELS).astype("float64").to_numpy()
        d += 0.5 * np.nan_to_num(np.abs(levels - AUGMENTATION_LEVELS[aug]), nan=0.0)
    return d


def nearest_config(target: Mapping[str, Any], configs: pd.DataFrame) -> int:
    """Position (0-based) of the row of `configs` nearest to `target` (exact match when recorded)."""
    return int(np.argmin(config_distance(target, configs)))


# --- random choice: exact expectations ----------------------------------------------------------

def expected_best_of(values: np.ndarray, k: int, score: np.ndarray | None = None) -> float:
    """E[score of the best of k configs drawn uniformly without replacement] (exact).

    `values` are the configs' accuracies (higher is better); `score` the quantity to average for
    the drawn best (default: the value itself). With v sorted ascending, P(best = v_(i)) =
    C(i-1, k-1) / C(n, k).
    """
    n = len(values)
    k = min(k, n)
    order = np.argsort(values, kind="stable")
    s = (values if score is None else score)[order].astype("float64")
    weights = np.array([math.comb(i, k - 1) for i in range(n)], dtype="float64") / math.comb(n, k)
    return float(weights @ s)


# --- single best config over the training datasets ----------------------------------------------

def single_best_ranking(train_scores: pd.DataFrame, *, min_support: float = 0.5) -> list[str]:
    """Config keys ordered by mean normalised score over the training tasks, best first.

    `train_scores`: one row per (task, config) with columns `task`, `key`, `score` (normalised
    accuracy in [0, 1] within its task). Only configs recorded on at least `min_support` of the
    training tasks are ranked (a config seen on one dataset has no "average"); when none is, the
    best-supported configs are used.
    """
    stats = train_scores.groupby("key")["score"].agg(["mean", "count"])
    n_tasks = train_scores["task"].nunique()
    supported = stats[stats["count"] >= max(2, math.ceil(min_support * n_tasks))]
    if supported.empty:
        supported = stats[stats["count"] == stats["count"].max()]
    ordered = supported.reset_index().sort_values(["mean", "count", "key"],
                                                  ascending=[False, False, True])
    return ordered["key"].tolist()


# --- Optuna TPE over the recorded configs --------------------------------------------------------

def tpe_search(configs: pd.DataFrame, values: np.ndarray, n_trials: int, seed: int) -> list[int]:
    """Run Optuna's TPE for `n_trials` over the task's recorded configs; the positions it evaluated.

    Search space: each config field that varies on the task — categorical fields (and resolution)
    as categoricals over the recorded values, lr / weight decay / batch size / epochs as log-scale
    floats over the recorded range, label smoothing as a float. A suggested point is looked up as
    the nearest recorded config (`config_distance`), whose recorded accuracy is the objective.
    `n_startup_trials` = n_trials // 2 (at least 1), so TPE models the history at every budget
    (Optuna's default of 10 random start-up trials would make TPE@5 and TPE@10 pure random search).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    varying = [f for f in CONFIG_FIELDS if f in configs and configs[f].nunique(dropna=True) > 1]
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(1, n_trials // 2))
    study = optuna.create_study(direction="maximize", sampler=sampler)
    visited: list[int] = []

    def objective(trial: optuna.Trial) -> float:
        point: dict[str, Any] = {}
        for name in varying:
            col = configs[name].dropna()
            if name in CATEGORICAL_FIELDS or name == "resolution":
                choices = sorted({v.item() if hasattr(v, "item") else v for v in col}, key=str)
                point[name] = trial.suggest_categorical(name, choices)
            elif name == "label_smoothing":
                point[name] = trial.suggest_float(name, float(col.min()), float(col.max()))
            else:
                low = max(float(col.min()), WD_FLOOR)
                point[name] = trial.suggest_float(name, low, max(float(col.max()), low), log=True)
        position = nearest_config(point, configs[varying]) if varying else 0
        visited.append(position)
        return float(values[position])

    study.optimize(objective, n_trials=n_trials)
    return visited

