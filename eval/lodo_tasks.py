"""The tasks of the leave-one-dataset-out benchmark (`eval.lodo`): one per held-out
(dataset_id, source) group of the run records, with its distinct configs and accuracies."""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from eval.baselines import CONFIG_FIELDS, config_key
from knowledge.metafeatures import MetaFeatures
from knowledge.metalearner.model import accuracy_target, training_rows
from knowledge.runs.record import RunRecord, record_to_row

log = logging.getLogger("eval.lodo")

MIN_RECORDS = 5
TPE_TRIALS: tuple[int, ...] = (5, 10, 20)
BASE_METHODS: tuple[str, ...] = ("meta-learner", "random", "single-best", "nearest-dataset")


def methods(tpe_trials: Sequence[int] = TPE_TRIALS) -> list[str]:
    """The method names of a report, in display order."""
    return [*BASE_METHODS, *(f"tpe@{n}" for n in tpe_trials), "oracle"]


@dataclass
class Task:
    """One held-out (dataset_id, source) group: its distinct recorded configs and accuracies."""

    dataset_id: str
    source: str
    base_dataset: str
    medical: bool
    metric: str
    n_records: int
    meta: MetaFeatures
    rows: pd.DataFrame  # one flat row per distinct config (mf.*, cfg.*), sorted by key
    keys: list[str]
    values: np.ndarray  # accuracy per config (fraction), same order

    @property
    def task_id(self) -> str:
        return f"{self.dataset_id} [{self.source}]"

    @property
    def configs(self) -> pd.DataFrame:
        """The candidates' config fields (columns `CONFIG_FIELDS`)."""
        return self.rows[[f"cfg.{f}" for f in CONFIG_FIELDS]].set_axis(list(CONFIG_FIELDS), axis=1)

    def score(self, positions: Sequence[int]) -> dict[str, float]:
        """Regret, regret in points and rank of the best of `positions`."""
        best, worst = float(self.values.max()), float(self.values.min())
        chosen = float(max(self.values[p] for p in positions))
        return {
            "regret": (best - chosen) / (best - worst),
            "regret_points": 100.0 * (best - chosen),
            "rank": float(1 + int(np.sum(self.values > chosen))),
        }


def records_frame(records: Sequence[RunRecord]) -> pd.DataFrame:
    """The flat frame (`record_to_row` columns) of records."""
    return pd.DataFrame([record_to_row(r) for r in records])


def _meta(row: pd.Series) -> MetaFeatures:
    data = {}
    for name in MetaFeatures.model_fields:
        value = row.get(f"mf.{name}")
        if value is not None and not (isinstance(value, float) and math.isnan(value)):
            data[name] = value.item() if hasattr(value, "item") else value
    return MetaFeatures.model_validate(data)


def _groups(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` (usable records) with `_y` (accuracy), `_metric` and `_key` (config key) columns."""
    test = pd.to_numeric(rows.get("out.test_acc", pd.Series(np.nan, index=rows.index)),
                         errors="coerce")
    cfg = rows[[f"cfg.{f}" for f in CONFIG_FIELDS]].set_axis(list(CONFIG_FIELDS), axis=1)
    return rows.assign(
        _y=accuracy_target(rows).to_numpy(),
        _metric=np.where(test.notna(), "test_acc", "val_acc"),
        _key=[config_key(c) for c in cfg.to_dict("records")],
        _source=rows["prov.source"].astype(str) if "prov.source" in rows else "own",
    )


def build_tasks(frame: pd.DataFrame, *, min_records: int = MIN_RECORDS) -> list[Task]:
    """The evaluation tasks of a flat frame (module doc), sorted by (base, dataset_id, source)."""
    rows = training_rows(frame)
    if rows.empty:
        return []
    rows = _groups(rows)
    tasks: list[Task] = []
    for (dataset_id, source), g in rows.groupby(["dataset_id", "_source"], sort=True):
        if len(g) < min_records:
            continue
        per = g.groupby("_key", sort=True)
        values = per["_y"].mean()
        if values.nunique() < 2:
            log.info("task %s [%s] skipped: every config scores the same", dataset_id, source)
            continue
        first = per.head(1).set_index("_key").loc[values.index]
        metrics = set(g["_metric"])
        tasks.append(Task(
            dataset_id=str(dataset_id), source=str(source),
            base_dataset=str(g["base_dataset"].iloc[0]),
            medical=bool(g["medical"].iloc[0]) if "medical" in g else True,
            metric=metrics.pop() if len(metrics) == 1 else "mixed",
            n_records=len(g), meta=_meta(g.iloc[0]),
            rows=first.reset_index(drop=True), keys=list(values.index),
            values=values.to_numpy("float64"),
        ))
    return sorted(tasks, key=lambda t: (t.base_dataset, t.dataset_id, t.source))
