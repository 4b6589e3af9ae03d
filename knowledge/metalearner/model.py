"""The meta-learner: XGBoost models that predict a config's accuracy (with an interval) and cost.

Accuracy
    Target: `out.test_acc`, or `out.val_acc` where the test accuracy is missing, of `status == 'ok'`
    runs (a fraction in [0, 1]). One XGBoost booster with `objective='reg:quantileerror'` and
    `quantile_alpha=[0.1, 0.5, 0.9]` gives the median (the point prediction) and an 80 % interval.

    Why quantile regression rather than a seed/bootstrap ensemble: what a user needs is the range of
    accuracies a config may reach on a dataset like theirs (the spread of outcomes), which
    conditional quantiles estimate directly; the spread of a few bootstrap/seed boosters is the
    fit's own sampling noise, a different and usually much smaller quantity. Quantile regression is
    also one model to fit, save and explain, and one `predict` call, which keeps ranking a few
    thousand candidates well under a second. The median is the prediction as fitted (SHAP
    explains it exactly); where the fitted curves cross, the interval ends are moved out to include
    it, so `acc_lo <= acc <= acc_hi` always holds.

    Calibration: with few datasets the meta-features identify each training dataset, so the fitted
    quantiles describe the spread *within* known datasets and are far too narrow for a new one
    (measured on the 1,440 MedMNIST+ records, leave-one-dataset-out: 37 % of held-out accuracies
    inside the nominal 80 % interval). `fit` therefore widens the interval by conformalized
    quantile regression (Romano et al., 2019) with grouped folds: out-of-fold conformity scores
    max(lo - y, y - hi) over `CALIBRATION_FOLDS` folds of whole datasets, and `interval_margin` =
    their 80 % quantile is subtracted from lo and added to hi.

Cost
    Target: log(seconds per image-epoch) = log(train_seconds / (n_instances x epochs_completed)) of
    runs that were timed on a CPU (our own sweeps; published records carry no times, and GPU-timed
    runs are left out because the device table of `budget.py` converts CPU time to other devices).
    Prior (documented FLOPs proxy): seconds per image-epoch ~ c0 x params_m x (resolution / 28)^2,
    divided by 3 for linear probing (a forward pass only: the backbone is frozen, and a forward is
    about a third of a forward+backward step). c0 is the median residual of the timed runs, or
    `DEFAULT_C0` (ResNet-18 at 28 px, end-to-end, measured on the 2-core development CPU) when
    nothing is timed.
    With at least `MIN_TIMED` timed runs an XGBoost model learns the residual over the prior
    (`base_margin` = log prior), so it is exact where measured and falls back to the prior's scaling
    elsewhere. Predictions for a model that was never timed here are flagged `time_is_estimate`.

Source of the records: rows from published papers and our own runs are pooled; `source_weight`
(e.g. `{"published": 1.0, "own": 2.0}`) weights them. `source` is deliberately not a feature: at
recommendation time there is no "source" to condition on, and the config columns (epochs,
resolution, lr, ...) already describe what differs between the two.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from knowledge.errors import StoreError
from knowledge.metalearner.features import FEATURE_COLUMNS, featurize

log = logging.getLogger(__name__)

QUANTILES: tuple[float, float, float] = (0.1, 0.5, 0.9)
ACC_PARAMS: dict[str, Any] = dict(
    n_estimators=300,
    learning_rate=0.05,
    max_depth=4,
    min_child_weight=2.0,
    subsample=0.8,
    colsample_bytree=0.8,
    reg_lambda=1.0,
    tree_method="hist",
    max_cat_to_onehot=1,  # partition-based categorical splits
    # one thread: a few thousand rows gain nothing from more, and on a busy machine (a sweep
    # running beside it) XGBoost's default of all cores made fits 10-80x slower
    n_jobs=1,
)
COST_PARAMS: dict[str, Any] = dict(
    n_estimators=200,
    learning_rate=0.05,
    max_depth=3,
    min_child_weight=2.0,
    subsample=0.9,
    tree_method="hist",
    max_cat_to_onehot=1,
    n_jobs=1,
)
COST_FEATURES: tuple[str, ...] = (
    "model", "family", "params_m", "pretrained", "scheme", "resolution", "batch_size",
    "augmentation", "channels",
)
MIN_ACC_RECORDS = 10
# Config fields whose training evidence is recorded: the set of values seen (categorical) or the
# [min, max] range seen (numeric). Candidates outside it are extrapolations (see `extrapolated`).
EVIDENCE_CATEGORICAL: tuple[str, ...] = ("model", "pretrained", "scheme", "optimizer", "augmentation")
EVIDENCE_NUMERIC: tuple[str, ...] = ("resolution", "lr", "weight_decay", "batch_size", "epochs",
                                     "label_smoothing")
CALIBRATION_FOLDS = 3
MIN_TIMED = 10
# Anchor of the FLOPs-proxy prior when no run is timed: ResNet-18 (11.7 M parameters) at 28 px,
# end-to-end, ~6 ms per image-epoch. Measured once on the 2-core development machine (1 thread,
# timm model, batch 64, forward + backward + AdamW step, under load): resnet18 6.2 ms/img,
# mobilenetv3_small_100 4.5, efficientnet_lite0 11.6 at 28 px; at 64 px 18.1 / 6.0 / 20.4. So at
# low resolution the prior's params x resolution^2 overstates differences (fixed per-image overhead
# dominates); the residual model corrects this as soon as own runs are timed.
REFERENCE_RESOLUTION = 28
DEFAULT_C0 = math.log(6e-3 / 11.7)
LINEAR_PROBE_FACTOR = 1.0 / 3.0
_GPU_DEVICE = re.compile(r"nvidia|cuda|tesla|geforce|rtx|quadro|radeon|\bmps\b|apple m\d|h100|a100",
                         re.IGNORECASE)


def accuracy_target(frame: pd.DataFrame) -> pd.Series:
    """`out.test_acc`, falling back to `out.val_acc`; NaN where neither is known."""
    test = pd.to_numeric(frame.get("out.test_acc", pd.Series(np.nan, index=frame.index)),
                         errors="coerce")
    val = pd.to_numeric(frame.get("out.val_acc", pd.Series(np.nan, index=frame.index)),
                        errors="coerce")
    return test.fillna(val).astype("float64")


def training_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows the accuracy model learns from: status 'ok' and an accuracy known."""
    if len(frame) == 0:
        return frame
    ok = frame["status"].eq("ok") if "status" in frame else pd.Series(True, index=frame.index)
    return frame[ok & accuracy_target(frame).notna()]


def log_cost_target(frame: pd.DataFrame) -> pd.Series:
    """log(seconds per image-epoch) of CPU-timed runs; NaN for untimed (or GPU-timed) rows."""
    def col(name: str) -> pd.Series:
        return pd.to_numeric(frame.get(name, pd.Series(np.nan, index=frame.index)), errors="coerce")

    seconds = col("out.train_seconds")
    epochs = col("out.epochs_completed").fillna(col("cfg.epochs"))
    n = col("mf.n_instances")
    per = seconds / (n * epochs)
    device = frame.get("prov.device", pd.Series(None, index=frame.index)).astype("object")
    on_gpu = device.map(lambda d: bool(_GPU_DEVICE.search(d)) if isinstance(d, str) else False)
    ok = frame["status"].eq("ok") if "status" in frame else pd.Series(True, index=frame.index)
    return np.log(per.where((per > 0) & ok & ~on_gpu.astype(bool))).astype("float64")


def cost_prior_shape(features: pd.DataFrame) -> np.ndarray:
    """log(params_m x (resolution/28)^2 x scheme factor): the FLOPs proxy without its constant."""
    params = features["params_m"].to_numpy(dtype="float64")
    res = features["resolution"].to_numpy(dtype="float64") / REFERENCE_RESOLUTION
    probe = (features["scheme"].astype("object") == "linear_probing").to_numpy(dtype=bool)
    shape = np.log(params) + 2.0 * np.log(res) + np.where(probe, math.log(LINEAR_PROBE_FACTOR), 0.0)
    return np.nan_to_num(shape, nan=0.0)


def config_evidence(rows: pd.DataFrame) -> dict[str, list[Any]]:
    """Values seen per config field (categorical) and [min, max] seen (numeric) in `rows`."""
    out: dict[str, list[Any]] = {}
    for name in EVIDENCE_CATEGORICAL:
        if f"cfg.{name}" in rows:
            values = rows[f"cfg.{name}"].dropna().unique().tolist()
            out[name] = sorted((v.item() if hasattr(v, "item") else v) for v in values)
    for name in EVIDENCE_NUMERIC:
        if f"cfg.{name}" in rows:
            v = pd.to_numeric(rows[f"cfg.{name}"], errors="coerce").dropna()
            if len(v):
                out[name] = [float(v.min()), float(v.max())]
    return out


def _weights(frame: pd.DataFrame, source_weight: dict[str, float] | None) -> np.ndarray:
    if not source_weight or "prov.source" not in frame:
        return np.ones(len(frame))
    return frame["prov.source"].map(lambda s: float(source_weight.get(s, 1.0))).to_numpy("float64")


@dataclass
class MetaLearner:
    """Predicts accuracy (median + 80 % interval) and CPU seconds per image-epoch of configs."""

    acc_model: xgb.XGBRegressor | None = None
    cost_model: xgb.XGBRegressor | None = None
    cost_c0: float = DEFAULT_C0
    timed_models: list[str] = field(default_factory=list)
    n_records: dict[str, int] = field(default_factory=dict)
    n_timed: int = 0
    source_weight: dict[str, float] | None = None
    interval_margin: float = 0.0
    evidence: dict[str, list[Any]] = field(default_factory=dict)
    seed: int = 0
    fitted_at: str | None = None
    data_hash: str | None = None
    acc_params: dict[str, Any] = field(default_factory=lambda: dict(ACC_PARAMS))
    cost_params: dict[str, Any] = field(default_factory=lambda: dict(COST_PARAMS))

    @property
    def fitted(self) -> bool:
        return self.acc_model is not None

    # --- fitting -----------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame, *, source_weight: dict[str, float] | None = None,
            seed: int = 0, calibrate: bool = True, group_column: str = "base_dataset") -> MetaLearner:
        """Fit both models on flat records (`record_to_row` columns); returns self.

        `calibrate` widens the accuracy interval from grouped out-of-fold errors (module doc; needs
        at least 3 distinct `group_column` values, else the interval stays as fitted).
        Raises StoreError when fewer than `MIN_ACC_RECORDS` usable records are given.
        """
        rows = training_rows(frame)
        if len(rows) < MIN_ACC_RECORDS:
            raise StoreError(
                f"the meta-learner needs at least {MIN_ACC_RECORDS} successful runs with an "
                f"accuracy, got {len(rows)} (import published results or run a sweep first)"
            )
        self.seed, self.source_weight = seed, dict(source_weight) if source_weight else None
        X = featurize(rows)
        y = accuracy_target(rows).to_numpy()
        w = _weights(rows, source_weight)
        self.acc_model = self._new_acc_model(seed)
        self.acc_model.fit(X, y, sample_weight=w)
        self.interval_margin = 0.0
        if calibrate and group_column in rows and rows[group_column].nunique() >= 3:
            self.interval_margin = self._conformal_margin(X, y, w, rows[group_column], seed)
        self.evidence = config_evidence(rows)
        sources = rows["prov.source"] if "prov.source" in rows else pd.Series("own", index=rows.index)
        self.n_records = {str(k): int(v) for k, v in sources.value_counts().sort_index().items()}
        self._fit_cost(frame, seed)
        self.fitted_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        log.info("fitted meta-learner on %d records (%s), %d timed", len(rows), self.n_records,
                 self.n_timed)
        return self

    def _new_acc_model(self, seed: int) -> xgb.XGBRegressor:
        return xgb.XGBRegressor(
            objective="reg:quantileerror", quantile_alpha=np.array(QUANTILES),
            enable_categorical=True, random_state=seed, **self.acc_params,
        )

    def _conformal_margin(self, X: pd.DataFrame, y: np.ndarray, w: np.ndarray, groups: pd.Series,
                          seed: int) -> float:
        """80 % quantile of out-of-fold CQR scores max(lo - y, y - hi), whole groups held out."""
        from sklearn.model_selection import GroupKFold

        scores = np.empty(len(y))
        folds = GroupKFold(n_splits=min(CALIBRATION_FOLDS, groups.nunique()))
        for train_idx, test_idx in folds.split(X, groups=groups.astype(str)):
            model = self._new_acc_model(seed)
            model.fit(X.iloc[train_idx], y[train_idx], sample_weight=w[train_idx])
            q = np.asarray(model.predict(X.iloc[test_idx])).reshape(len(test_idx), -1)
            lo, hi = np.minimum(q[:, 0], q[:, 1]), np.maximum(q[:, 2], q[:, 1])
            scores[test_idx] = np.maximum(lo - y[test_idx], y[test_idx] - hi)
        level = min(1.0, math.ceil((len(scores) + 1) * (QUANTILES[2] - QUANTILES[0])) / len(scores))
        return float(max(0.0, np.quantile(scores, level)))

    def _fit_cost(self, frame: pd.DataFrame, seed: int) -> None:
        target = log_cost_target(frame) if len(frame) else pd.Series(dtype="float64")
        timed = frame.loc[target.notna()] if len(frame) else frame
        self.n_timed = int(len(timed))
        self.cost_model, self.cost_c0, self.timed_models = None, DEFAULT_C0, []
        if self.n_timed == 0:
            return
        X = featurize(timed)
        shape = cost_prior_shape(X)
        y = target.loc[timed.index].to_numpy()
        self.cost_c0 = float(np.median(y - shape))
        self.timed_models = sorted(timed["cfg.model"].astype(str).unique())
        if self.n_timed >= MIN_TIMED:
            self.cost_model = xgb.XGBRegressor(
                objective="reg:squarederror", enable_categorical=True, random_state=seed,
                **self.cost_params,
            )
            self.cost_model.fit(X[list(COST_FEATURES)], y, base_margin=shape + self.cost_c0)

    # --- predicting ----------------------------------------------------------------------------
    def predict(self, features: pd.DataFrame) -> pd.DataFrame:
        """Per row of a `featurize` frame: acc, acc_lo, acc_hi (fractions), sec_per_img_epoch (CPU
        seconds per training image per epoch) and time_is_estimate (model never timed here)."""
        if self.acc_model is None:
            raise StoreError("the meta-learner is not fitted (run `metallmix fit`)")
        if len(features) == 0:
            return pd.DataFrame(columns=["acc", "acc_lo", "acc_hi", "sec_per_img_epoch",
                                         "time_is_estimate"])
        X = features[list(FEATURE_COLUMNS)]
        q = np.asarray(self.acc_model.predict(X), dtype="float64").reshape(len(X), -1)
        # The median is kept as fitted (so SHAP explains it exactly); the interval ends are moved
        # out to include it where the fitted quantile curves cross, then widened by the margin.
        q[:, 0] = np.minimum(q[:, 0], q[:, 1]) - self.interval_margin
        q[:, 2] = np.maximum(q[:, 2], q[:, 1]) + self.interval_margin
        q = np.clip(q, 0.0, 1.0)
        margin = cost_prior_shape(X) + self.cost_c0
        if self.cost_model is not None:
            log_sec = self.cost_model.predict(X[list(COST_FEATURES)], base_margin=margin)
        else:
            log_sec = margin
        estimate = ~X["model"].astype("object").isin(self.timed_models).to_numpy(dtype=bool)
        return pd.DataFrame(
            {
                "acc": q[:, 1],
                "acc_lo": q[:, 0],
                "acc_hi": q[:, 2],
                "sec_per_img_epoch": np.exp(np.asarray(log_sec, dtype="float64")),
                "time_is_estimate": estimate,
            },
            index=features.index,
        )

    def extrapolated(self, configs: pd.DataFrame) -> list[list[str]]:
        """Per row of a `cfg.*` frame: the config fields whose value lies outside the training
        evidence (a value never seen, or a number outside the range seen)."""
        flags: dict[str, np.ndarray] = {}
        for name in EVIDENCE_CATEGORICAL:
            seen = self.evidence.get(name)
            if seen is not None and f"cfg.{name}" in configs:
                flags[name] = ~configs[f"cfg.{name}"].isin(seen).to_numpy(dtype=bool)
        for name in EVIDENCE_NUMERIC:
            seen = self.evidence.get(name)
            if seen is not None and f"cfg.{name}" in configs:
                v = pd.to_numeric(configs[f"cfg.{name}"], errors="coerce").to_numpy("float64")
                flags[name] = (v < seen[0] - 1e-12) | (v > seen[1] + 1e-12)
        names = list(flags)
        if not names:
            return [[] for _ in range(len(configs))]
        matrix = np.column_stack([flags[n] for n in names])
        return [[names[j] for j in np.flatnonzero(row)] for row in matrix]

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`predict(featurize(frame))`: predictions for flat records."""
        return self.predict(featurize(frame))


# --- evaluation ----------------------------------------------------------------------------------
@dataclass
class CVResult:
    """Grouped cross-validation of the accuracy model (held-out groups = unseen datasets).

    Accuracy errors are in percentage points. `baseline_mae`: predicting each held-out row by the
    mean accuracy of the same (model, pretrained, scheme, resolution) on the training folds (global
    mean where unseen), i.e. "what this config usually gets"; `coverage`: share of held-out
    accuracies inside [acc_lo, acc_hi] (nominal 80 %); `spearman`: mean per held-out dataset rank
    correlation of predicted vs true accuracy; `regret`: mean per held-out dataset of (best true
    accuracy - true accuracy of the top-predicted config).
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
    from scipy.stats import spearmanr
    from sklearn.model_selection import GroupKFold

    rows = training_rows(frame).reset_index(drop=True)
    groups = rows[group_column].astype(str)
    n_groups = groups.nunique()
    if n_groups < 2:
        raise StoreError(f"grouped CV needs at least 2 distinct {group_column} values, got {n_groups}")
    n_folds = min(n_splits, n_groups)
    y = accuracy_target(rows).to_numpy()
    pred = pd.DataFrame(index=rows.index, columns=["acc", "acc_lo", "acc_hi", "base"], dtype=float)
    key_cols = ["cfg.model", "cfg.pretrained", "cfg.scheme", "cfg.resolution"]
    for train_idx, test_idx in GroupKFold(n_splits=n_folds).split(rows, groups=groups):
        train, test = rows.iloc[train_idx], rows.iloc[test_idx]
        learner = MetaLearner(acc_params=dict(ACC_PARAMS, **(acc_params or {})))
        learner.fit(train, source_weight=source_weight, seed=seed, calibrate=calibrate,
                    group_column=group_column)
        p = learner.predict_frame(test)
        pred.loc[test.index, ["acc", "acc_lo", "acc_hi"]] = p[["acc", "acc_lo", "acc_hi"]].to_numpy()
        config_mean = (train.assign(_y=y[train_idx]).groupby(key_cols, dropna=False)["_y"].mean()
                       .rename("_m").reset_index())
        base = test[key_cols].merge(config_mean, on=key_cols, how="left")["_m"].to_numpy()
        pred.loc[test.index, "base"] = np.where(np.isnan(base), y[train_idx].mean(), base)

    err = (pred["acc"] - y).abs() * 100
    rows = rows.assign(_y=y, _p=pred["acc"].to_numpy(), _b=pred["base"].to_numpy(), _e=err)
    spear, regret, base_regret = [], [], []
    for _, g in rows.groupby(group_column):
        if len(g) > 2 and g["_y"].nunique() > 1:
            spear.append(spearmanr(g["_p"], g["_y"]).statistic)
        best = g["_y"].max()
        regret.append((best - g.loc[g["_p"].idxmax(), "_y"]) * 100)
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
