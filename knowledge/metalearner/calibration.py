"""Calibration of the accuracy interval (conformalized quantile regression, per support stratum)
and the grouped folds that also choose the ranking blend.

Calibration: with few datasets the meta-features identify each training dataset, so the fitted
quantiles describe the spread *within* known datasets and are far too narrow for a new one
(measured on the 1,440 MedMNIST+ records, leave-one-dataset-out: 37 % of held-out accuracies
inside the nominal 80 % interval). `fit` therefore widens the interval by conformalized
quantile regression (Romano et al., 2019) with grouped folds: out-of-fold conformity scores
max(lo - y, y - hi) over `CALIBRATION_FOLDS` folds of whole datasets, and `interval_margin` =
their 80 % quantile is subtracted from lo and added to hi. The margin is computed per stratum
of evidence (Mondrian conformal, `interval_margins`): configs of the published MedMNIST+
protocol, and the others by how many datasets their backing runs cover in the fold's training
runs (>= 3, 1-2, none; `knowledge.metalearner.support`), so a config with less support gets a
wider interval (never a narrower one). The ranking never looks at the interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from knowledge.metalearner.blend import choose_blend, spread
from knowledge.metalearner.support import Evidence, configs_of
from knowledge.metalearner.targets import MEDIAN, QUANTILES
from knowledge.search_space import TrainConfig, is_published_protocol

if TYPE_CHECKING:
    import pandas as pd

    from knowledge.metalearner.model import MetaLearner

# Grouped folds of the calibration and of the blend choice: one base dataset held out per fold
# while there are at most this many (what `metallmix eval lodo` holds out). With 3 folds (a third
# of the bases out) the published tasks' held-out coverage was 72 % for a nominal 80 %; with
# leave-one-base-out 75 % (docs/BENCHMARKS.md).
CALIBRATION_FOLDS = 15
# Interval margins per support stratum (Mondrian conformal): a config backed by runs on at least
# WELL_SUPPORTED datasets, by runs on fewer, or by none (`support.Evidence.n_datasets`). A stratum
# with fewer than MIN_STRATUM held-out rows in the calibration folds uses the pooled margin, and
# the margins never shrink as support falls (none >= thin >= well).
# Configs of the published MedMNIST+ protocol (100 epochs, lr 1e-4, ...: GPU runs of other
# papers) are a stratum of their own: their outcomes spread differently from our short CPU runs.
WELL_SUPPORTED = 3
MIN_STRATUM = 30
STRATA: tuple[str, ...] = ("well", "thin", "none")


def support_stratum(n_datasets: np.ndarray, configs: Sequence[TrainConfig] | None = None
                    ) -> np.ndarray:
    """'well' / 'thin' / 'none' per config from its number of backing datasets; 'protocol' for a
    supported config of the published protocol (when `configs` are given)."""
    n = np.asarray(n_datasets)
    out = np.where(n >= WELL_SUPPORTED, "well", np.where(n >= 1, "thin", "none")).astype(object)
    if configs is not None:
        protocol = np.array([is_published_protocol(c) for c in configs], dtype=bool)
        out[protocol & (n >= 1)] = "protocol"
    return out


def _conformal(scores: np.ndarray) -> float:
    """The split-conformal 80 % margin of CQR scores (finite-sample level), at least 0."""
    if len(scores) == 0:
        return 0.0
    level = min(1.0, math.ceil((len(scores) + 1) * (QUANTILES[2] - QUANTILES[0])) / len(scores))
    return float(max(0.0, np.quantile(scores, level)))



def grouped_folds(learner: MetaLearner, X: pd.DataFrame, y: np.ndarray, w: np.ndarray,
                  tasks: np.ndarray, groups: pd.Series, seed: int, calibrate: bool,
                  want_blend: bool, rows: pd.DataFrame | None = None,
                  ) -> tuple[float, float, dict[str, float], dict[str, float]]:
    """Out-of-fold predictions over whole held-out groups: the conformal margin (80 %
    quantile of the CQR scores max(lo - y, y - hi)), pooled and per support stratum (each
    held-out config's support counted in its fold's training runs), and the blend weight with
    its CV means."""
    from sklearn.model_selection import GroupKFold

    scores = np.empty(len(y))
    strata = np.full(len(y), "none", dtype=object)
    held_out = []
    folds = GroupKFold(n_splits=min(CALIBRATION_FOLDS, groups.nunique()))
    for train_idx, test_idx in folds.split(X, groups=groups.astype(str)):
        model = learner._new_acc_model(seed)
        model.fit(X.iloc[train_idx], y[train_idx], sample_weight=w[train_idx])
        q = np.asarray(model.predict(X.iloc[test_idx])).reshape(len(test_idx), -1)
        lo, hi = np.minimum(q[:, 0], q[:, 1]), np.maximum(q[:, 2], q[:, 1])
        scores[test_idx] = np.maximum(lo - y[test_idx], y[test_idx] - hi)
        if calibrate and rows is not None:
            fold_evidence = Evidence.from_frame(rows.iloc[train_idx])
            held = configs_of(rows.iloc[test_idx])
            strata[test_idx] = support_stratum(fold_evidence.n_datasets(held), held)
        if not want_blend:
            continue
        ranker = learner._fit_ranker(X.iloc[train_idx], y[train_idx], tasks[train_idx], seed)
        if ranker is None:
            continue
        fitted = np.asarray(model.predict(X.iloc[train_idx])).reshape(len(train_idx), -1)
        acc_spread = spread(fitted[:, MEDIAN], tasks[train_idx])
        rank_spread = spread(np.asarray(ranker.predict(X.iloc[train_idx])), tasks[train_idx])
        held_out.append((y[test_idx], q[:, MEDIAN], np.asarray(ranker.predict(X.iloc[test_idx])),
                         tasks[test_idx], acc_spread, rank_spread))
    margin = _conformal(scores) if calibrate else 0.0
    margins: dict[str, float] = {}
    if calibrate and rows is not None:
        floor = 0.0
        for name in STRATA:  # well -> thin -> none: never narrower than the better supported
            part = scores[strata == name]
            value = _conformal(part) if len(part) >= MIN_STRATUM else margin
            margins[name] = floor = max(floor, value)
        part = scores[strata == "protocol"]
        margins["protocol"] = _conformal(part) if len(part) >= MIN_STRATUM else margin
    chosen, means = choose_blend(held_out) if held_out else (0.0, {})
    return margin, chosen, means, margins
