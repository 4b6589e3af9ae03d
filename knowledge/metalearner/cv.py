"""Grouped cross-validation of the meta-learner's accuracy model (held-out groups = unseen datasets)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from knowledge.errors import StoreError
from knowledge.metalearner.targets import accuracy_target, training_rows

if TYPE_CHECKING:
    import pandas as pd


# --- evaluation ----------------------------------------------------------------------------------
@dataclass
class CVResult:
    """Grouped cross-validation of the accuracy model (held-out groups = unseen datasets).

    Accuracy errors are in percentage points. `baseline_mae`: predicting each held-out row by the
    mean accuracy of the same (model, pretrained, scheme, resolution) on the training folds (global
    mean where unseen), i.e. "what this config usually gets"; `coverage`: share of held-out
    accuracies inside [acc_lo, acc_hi] (nominal 80 %); `spearman`: mean per held-out dataset rank
    correlation of predicted vs true accuracy; `regret`: mean per held-out dataset of (best true
    accuracy - true accuracy of the top-ranked config, by the ranking score `score`).
    """

    n_records: int
    n_folds: int
    group_column: str
    mae: float
    baseline_mae: float
    coverage: float
    spearman: float
    regret: float
    baseline_regret: float
    per_group_mae: dict[str, float]
    by_source_mae: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def grouped_cv(frame: pd.DataFrame, *, group_column: str = "base_dataset", n_splits: int = 4,
               source_weight: dict[str, float] | None = None, seed: int = 0,
               acc_params: dict[str, Any] | None = None, calibrate: bool = True) -> CVResult:
    """Cross-validate the accuracy model with whole groups (datasets) held out per fold."""
    import pandas as pd
    from scipy.stats import spearmanr
    from sklearn.model_selection import GroupKFold

    from knowledge.metalearner.model import ACC_PARAMS, MetaLearner  # lazy: import cycle (model re-exports cv)

    rows = training_rows(frame).reset_index(drop=True)
    groups = rows[group_column].astype(str)
    n_groups = groups.nunique()
    if n_groups < 2:
        raise StoreError(f"grouped CV needs at least 2 distinct {group_column} values, got {n_groups}")
    n_folds = min(n_splits, n_groups)
    y = accuracy_target(rows).to_numpy()
    pred = pd.DataFrame(index=rows.index, columns=["acc", "acc_lo", "acc_hi", "score", "base"],
                        dtype=float)
    key_cols = ["cfg.model", "cfg.pretrained", "cfg.scheme", "cfg.resolution"]
    for train_idx, test_idx in GroupKFold(n_splits=n_folds).split(rows, groups=groups):
        train, test = rows.iloc[train_idx], rows.iloc[test_idx]
        learner = MetaLearner(acc_params=dict(ACC_PARAMS, **(acc_params or {})))
        learner.fit(train, source_weight=source_weight, seed=seed, calibrate=calibrate,
                    group_column=group_column)
        p = learner.predict_frame(test)
        # scores of different folds' learners are not comparable; each group lies in one fold
        pred.loc[test.index, ["acc", "acc_lo", "acc_hi", "score"]] = (
            p[["acc", "acc_lo", "acc_hi", "score"]].to_numpy())
        config_mean = (train.assign(_y=y[train_idx]).groupby(key_cols, dropna=False)["_y"].mean()
                       .rename("_m").reset_index())
        base = test[key_cols].merge(config_mean, on=key_cols, how="left")["_m"].to_numpy()
        pred.loc[test.index, "base"] = np.where(np.isnan(base), y[train_idx].mean(), base)

    err = (pred["acc"] - y).abs() * 100
    rows = rows.assign(_y=y, _p=pred["acc"].to_numpy(), _s=pred["score"].to_numpy(),
                       _b=pred["base"].to_numpy(), _e=err)
    spear, regret, base_regret = [], [], []
    for _, g in rows.groupby(group_column):
        if len(g) > 2 and g["_y"].nunique() > 1:
            spear.append(spearmanr(g["_p"], g["_y"]).statistic)
        best = g["_y"].max()
        regret.append((best - g.loc[g["_s"].idxmax(), "_y"]) * 100)
        base_regret.append((best - g.loc[g["_b"].idxmax(), "_y"]) * 100)
    sources = rows["prov.source"] if "prov.source" in rows else pd.Series("own", index=rows.index)
    return CVResult(
        n_records=len(rows),
        n_folds=n_folds,
        group_column=group_column,
        mae=float(err.mean()),
        baseline_mae=float(((pred["base"] - y).abs() * 100).mean()),
        coverage=float(((y >= pred["acc_lo"]) & (y <= pred["acc_hi"])).mean()),
        spearman=float(np.nanmean(spear)) if spear else math.nan,
        regret=float(np.mean(regret)),
        baseline_regret=float(np.mean(base_regret)),
        per_group_mae={str(k): float(v) for k, v in rows.groupby(group_column)["_e"].mean().items()},
        by_source_mae={str(k): float(v) for k, v in rows.groupby(sources)["_e"].mean().items()},
    )
