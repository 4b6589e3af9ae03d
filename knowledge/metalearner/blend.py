"""Ranking configs within a dataset: a pairwise ranker blended with the accuracy model.

What the recommender must get right is the *order* of configs on a new dataset (its top-1 pick),
not the dataset's accuracy level. A regression on raw accuracy spends most of its splits on the
level (which dataset is easy) and, with a dozen training datasets, learns dataset x config
interactions that do not transfer. A pairwise ranker (XGBoost `rank:pairwise`, one query group
per task = (dataset_id, source)) only learns which config beats which on the same dataset.

The ranking score blends both, each divided by its typical within-task spread on the training
data (`spread`), so that the weight means the same whatever the models' units:

    score = (1 - blend) * acc / acc_spread + blend * ranker / ranker_spread

`blend` is chosen from `BLEND_GRID` by grouped cross-validation on the training data only
(`choose_blend`: whole base datasets held out, the mean normalised top-1 regret of the held-out
tasks, ties to the smaller weight), never on data it is evaluated on. With fewer than 3 groups
there is nothing to validate on and the accuracy model ranks alone (blend 0).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

BLEND_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0)
MIN_TASK_RECORDS = 5  # a held-out task scores a pick only with this many runs (as eval.lodo)


def task_ids(rows: pd.DataFrame, group_column: str = "base_dataset") -> np.ndarray:
    """The task of each row: 'dataset_id|source' (`group_column` when there is no dataset_id)."""
    import pandas as pd

    if "dataset_id" in rows:
        dataset = rows["dataset_id"].astype(str)
    elif group_column in rows:
        dataset = rows[group_column].astype(str)
    else:
        dataset = pd.Series("all", index=rows.index)
    source = rows["prov.source"].astype(str) if "prov.source" in rows else "own"
    return (dataset + "|" + source).to_numpy()


def within_task_norm(y: np.ndarray, tasks: np.ndarray) -> np.ndarray:
    """(y - task min) / (task max - task min); 0.5 where a task's runs all score the same."""
    import pandas as pd

    s = pd.Series(np.asarray(y, dtype="float64"))
    g = s.groupby(tasks)
    lo, hi = g.transform("min"), g.transform("max")
    span = (hi - lo).to_numpy()
    return np.where(span > 0, (s - lo).to_numpy() / np.where(span > 0, span, 1.0), 0.5)


def spread(values: np.ndarray, tasks: np.ndarray) -> float:
    """Mean within-task standard deviation of `values` (1.0 when no task has two distinct ones)."""
    import pandas as pd

    stds = pd.Series(np.asarray(values, dtype="float64")).groupby(tasks).std(ddof=0)
    stds = stds[stds > 1e-12]
    return float(stds.mean()) if len(stds) else 1.0


def blend_score(acc: np.ndarray, ranker: np.ndarray | None, blend: float, acc_spread: float,
                ranker_spread: float) -> np.ndarray:
    """The ranking score (module doc); the accuracy alone when there is no ranker."""
    score = np.asarray(acc, dtype="float64") / acc_spread
    if ranker is None or blend <= 0:
        return score
    return (1.0 - blend) * score + blend * np.asarray(ranker, dtype="float64") / ranker_spread


def new_ranker(params: dict[str, Any], seed: int) -> Any:
    """An unfitted XGBoost pairwise ranker over the meta-learner's features."""
    import xgboost as xgb

    return xgb.XGBRanker(objective="rank:pairwise", enable_categorical=True, random_state=seed,
                         **params)


def fit_ranker(X: pd.DataFrame, y: np.ndarray, tasks: np.ndarray, params: dict[str, Any],
               seed: int, group_weight: dict[str, float] | None = None) -> Any:
    """A ranker fitted on rows grouped by task (label: within-task normalised accuracy)."""
    order = np.argsort(tasks, kind="stable")
    sorted_tasks = tasks[order]
    qid = np.unique(sorted_tasks, return_inverse=True)[1]
    weights = None
    if group_weight:
        firsts = np.unique(sorted_tasks)
        weights = np.array([group_weight.get(t, 1.0) for t in firsts], dtype="float64")
    model = new_ranker(params, seed)
    model.fit(X.iloc[order], within_task_norm(y, tasks)[order], qid=qid, sample_weight=weights)
    return model


def task_regrets(y: np.ndarray, score: np.ndarray, tasks: np.ndarray) -> list[float]:
    """Normalised top-1 regret, (best - picked) / (best - worst), of every task with at least
    `MIN_TASK_RECORDS` runs and two distinct accuracies; the pick is the highest score."""
    out: list[float] = []
    y = np.asarray(y, dtype="float64")
    score = np.asarray(score, dtype="float64")
    for task in np.unique(tasks):
        idx = np.flatnonzero(tasks == task)
        values = y[idx]
        if len(idx) < MIN_TASK_RECORDS or values.max() <= values.min():
            continue
        picked = values[int(np.argmax(score[idx]))]
        out.append(float((values.max() - picked) / (values.max() - values.min())))
    return out


def choose_blend(held_out: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float,
                                          float]],
                 grid: Sequence[float] = BLEND_GRID) -> tuple[float, dict[str, float]]:
    """The weight with the lowest mean held-out regret, and every weight's mean (by str(weight)).

    `held_out`: per fold (y, acc, ranker, tasks, acc_spread, ranker_spread) of the held-out rows,
    the spreads being those of the fold's training rows. Ties go to the smaller weight."""
    means: dict[str, float] = {}
    best, best_mean = float(grid[0]), np.inf
    for weight in grid:
        regrets: list[float] = []
        for y, acc, ranker, tasks, acc_spread, ranker_spread in held_out:
            regrets += task_regrets(y, blend_score(acc, ranker, weight, acc_spread, ranker_spread),
                                    tasks)
        if not regrets:
            continue
        mean = float(np.mean(regrets))
        means[str(weight)] = round(mean, 6)
        if mean < best_mean - 1e-12:
            best, best_mean = float(weight), mean
    return best, means
