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
    their 80 % quantile is subtracted from lo and added to hi. The margin is computed per stratum
    of evidence (Mondrian conformal, `interval_margins`): configs of the published MedMNIST+
    protocol, and the others by how many datasets their backing runs cover in the fold's training
    runs (>= 3, 1-2, none; `knowledge.metalearner.support`), so a config with less support gets a
    wider interval (never a narrower one). The ranking never looks at the interval.

Ranking (`knowledge.metalearner.blend`)
    Configs are ranked by a score that blends the accuracy median with a pairwise ranker (XGBoost
    `rank:pairwise`, query groups = tasks, i.e. (dataset_id, source)), each divided by its mean
    within-task spread: score = (1 - blend) x acc / acc_spread + blend x ranker / rank_spread.
    `blend` is chosen by the same grouped folds as the calibration (whole datasets held out, the
    weight with the lowest mean top-1 regret of the held-out tasks), so it never sees the data it
    is judged on. The ranker only learns which config beats which on the same dataset, which is
    what transfers across datasets (docs: eval/results/metalearner_study.md); the accuracy model
    still gives the predicted accuracy, its interval and the SHAP explanation. So the top-ranked
    config is not always the one with the highest predicted accuracy.

Speed
    Predictions walk the trees with NumPy (`forest.Forest`, exact XGBoost semantics), so a learner
    loaded from its artifact answers without importing xgboost (and scikit-learn with it).

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
from dataclasses import dataclass
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from knowledge.errors import StoreError
from knowledge.metalearner.blend import blend_score, choose_blend, fit_ranker, spread, task_ids
from knowledge.metalearner.features import CATEGORIES, FEATURE_COLUMNS, featurize, to_matrix
from knowledge.metalearner.forest import Forest
from knowledge.metalearner.support import Evidence, configs_of
from knowledge.search_space import TrainConfig, is_published_protocol

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

QUANTILES: tuple[float, float, float] = (0.1, 0.5, 0.9)
MEDIAN = QUANTILES.index(0.5)
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
    import pandas as pd

    test = pd.to_numeric(frame.get("out.test_acc", pd.Series(np.nan, index=frame.index)),
                         errors="coerce")
    val = pd.to_numeric(frame.get("out.val_acc", pd.Series(np.nan, index=frame.index)),
                        errors="coerce")
    return test.fillna(val).astype("float64")


def training_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows the accuracy model learns from: status 'ok' and an accuracy known."""
    import pandas as pd

    if len(frame) == 0:
        return frame
    ok = frame["status"].eq("ok") if "status" in frame else pd.Series(True, index=frame.index)
    return frame[ok & accuracy_target(frame).notna()]


def log_cost_target(frame: pd.DataFrame) -> pd.Series:
    """log(seconds per image-epoch) of CPU-timed runs; NaN for untimed (or GPU-timed) rows."""
    import pandas as pd

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
    return cost_prior_matrix(to_matrix(features[list(FEATURE_COLUMNS)]))


def cost_prior_matrix(M: np.ndarray) -> np.ndarray:
    """`cost_prior_shape` of a `to_matrix` array (columns `FEATURE_COLUMNS`)."""
    params = M[:, FEATURE_COLUMNS.index("params_m")].astype("float64")
    res = M[:, FEATURE_COLUMNS.index("resolution")].astype("float64") / REFERENCE_RESOLUTION
    probe = M[:, FEATURE_COLUMNS.index("scheme")] == CATEGORIES["scheme"].index("linear_probing")
    with np.errstate(divide="ignore", invalid="ignore"):
        shape = np.log(params) + 2.0 * np.log(res)
    shape = shape + np.where(probe, math.log(LINEAR_PROBE_FACTOR), 0.0)
    return np.nan_to_num(shape, nan=0.0, posinf=0.0, neginf=0.0)


def _as_float(values: Any) -> np.ndarray:
    """Numbers as float64, anything unreadable as NaN (as `pd.to_numeric(errors="coerce")`)."""
    try:
        return np.asarray(values, dtype="float64")
    except (TypeError, ValueError):
        import pandas as pd

        return pd.to_numeric(pd.Series(np.asarray(values, dtype=object)),
                             errors="coerce").to_numpy("float64")


def _conformal(scores: np.ndarray) -> float:
    """The split-conformal 80 % margin of CQR scores (finite-sample level), at least 0."""
    if len(scores) == 0:
        return 0.0
    level = min(1.0, math.ceil((len(scores) + 1) * (QUANTILES[2] - QUANTILES[0])) / len(scores))
    return float(max(0.0, np.quantile(scores, level)))


def config_evidence(rows: pd.DataFrame) -> dict[str, list[Any]]:
    """Values seen per config field (categorical) and [min, max] seen (numeric) in `rows`."""
    import pandas as pd

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


_MODEL_NAMES = ("acc", "cost", "rank")


class MetaLearner:
    """Predicts accuracy (median + 80 % interval), a ranking score and CPU seconds per image-epoch.

    Predictions are computed by `forest.Forest` (NumPy) from the fitted boosters, so a learner
    loaded from an artifact never imports xgboost; `acc_model` / `cost_model` / `rank_model` (the
    XGBoost scikit-learn wrappers, e.g. for `shap.TreeExplainer`) load on first access.
    """

    def __init__(
        self,
        acc_model: Any = None,
        cost_model: Any = None,
        cost_c0: float = DEFAULT_C0,
        timed_models: list[str] | None = None,
        n_records: dict[str, int] | None = None,
        n_timed: int = 0,
        source_weight: dict[str, float] | None = None,
        interval_margin: float = 0.0,
        evidence: dict[str, list[Any]] | None = None,
        seed: int = 0,
        fitted_at: str | None = None,
        data_hash: str | None = None,
        acc_params: dict[str, Any] | None = None,
        cost_params: dict[str, Any] | None = None,
        rank_model: Any = None,
        rank_params: dict[str, Any] | None = None,
        blend: float = 0.0,
        acc_spread: float = 1.0,
        rank_spread: float = 1.0,
        blend_cv: dict[str, float] | None = None,
        forests: dict[str, Forest] | None = None,
        model_files: dict[str, Path] | None = None,
        support: Evidence | None = None,
        interval_margins: dict[str, float] | None = None,
    ) -> None:
        self._models: dict[str, Any] = {"acc": acc_model, "cost": cost_model, "rank": rank_model}
        self._forests: dict[str, Forest] = dict(forests or {})
        self._model_files: dict[str, Path] = dict(model_files or {})
        self.cost_c0 = cost_c0
        self.timed_models = list(timed_models or [])
        self.n_records = dict(n_records or {})
        self.n_timed = n_timed
        self.source_weight = source_weight
        self.interval_margin = interval_margin
        # per support stratum (STRATA); empty: the pooled `interval_margin` for every config
        self.interval_margins = dict(interval_margins or {})
        self.evidence = dict(evidence or {})
        self.seed = seed
        self.fitted_at = fitted_at
        self.data_hash = data_hash
        self.acc_params = dict(ACC_PARAMS) if acc_params is None else dict(acc_params)
        self.cost_params = dict(COST_PARAMS) if cost_params is None else dict(cost_params)
        # the ranker uses the accuracy model's tree settings (fixed a priori, not tuned on any
        # benchmark) unless told otherwise
        self.rank_params = dict(self.acc_params if rank_params is None else rank_params)
        self.blend = float(blend)
        self.acc_spread = float(acc_spread)
        self.rank_spread = float(rank_spread)
        self.blend_cv = dict(blend_cv or {})
        # the runs behind the fit, for the support rule and the evidence-bounded candidates
        self.support = support if support is not None else Evidence.empty()

    def __repr__(self) -> str:
        return (f"MetaLearner(fitted={self.fitted}, n_records={self.n_records}, "
                f"blend={self.blend}, fitted_at={self.fitted_at!r})")

    # --- the boosters: fitted here, or loaded lazily from an artifact ---------------------------
    def _model(self, name: str) -> Any:
        model = self._models[name]
        if model is None and name in self._model_files:
            import xgboost as xgb

            model = xgb.XGBRanker() if name == "rank" else xgb.XGBRegressor()
            try:
                model.load_model(self._model_files[name])
            except (OSError, xgb.core.XGBoostError) as exc:
                raise StoreError(f"cannot load the meta-learner's {name} model from "
                                 f"{self._model_files[name]}: {str(exc).splitlines()[0]}") from None
            self._models[name] = model
        return model

    @property
    def acc_model(self) -> Any:
        """The XGBoost quantile regressor (None when not fitted)."""
        return self._model("acc")

    @acc_model.setter
    def acc_model(self, model: Any) -> None:
        self._models["acc"], self._forests = model, {k: v for k, v in self._forests.items()
                                                     if k != "acc"}

    @property
    def cost_model(self) -> Any:
        """The XGBoost cost-residual regressor (None when too few runs were timed)."""
        return self._model("cost")

    @property
    def rank_model(self) -> Any:
        """The XGBoost pairwise ranker (None when there was no task to rank within)."""
        return self._model("rank")

    def has_model(self, name: str) -> bool:
        """Whether the learner has the `name` ('acc', 'cost', 'rank') model, without loading it."""
        return (self._models.get(name) is not None or name in self._forests
                or name in self._model_files)

    def forest(self, name: str) -> Forest | None:
        """The NumPy form of the `name` model (built from the booster on first use)."""
        if name not in self._forests:
            model = self._model(name)
            if model is None:
                return None
            self._forests[name] = Forest.from_booster(model)
        return self._forests[name]

    @property
    def forests(self) -> dict[str, Forest]:
        """Every fitted model's forest, by name (what the artifact stores)."""
        return {name: f for name in _MODEL_NAMES if (f := self.forest(name)) is not None}

    @property
    def fitted(self) -> bool:
        return self.has_model("acc")

    # --- fitting -----------------------------------------------------------------------------
    def fit(self, frame: pd.DataFrame, *, source_weight: dict[str, float] | None = None,
            seed: int = 0, calibrate: bool = True, group_column: str = "base_dataset",
            blend: float | None = None) -> MetaLearner:
        """Fit the models on flat records (`record_to_row` columns); returns self.

        Grouped folds (`CALIBRATION_FOLDS`, whole `group_column` values held out; at least 3
        distinct values) choose the ranking blend (`blend.choose_blend`) and, with `calibrate`,
        widen the accuracy interval (module doc). `blend` fixes the weight instead of choosing it.
        Raises StoreError when fewer than `MIN_ACC_RECORDS` usable records are given.
        """
        import pandas as pd

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
        tasks = task_ids(rows, group_column)
        self._models = {"acc": None, "cost": None, "rank": None}
        self._forests, self._model_files = {}, {}
        self._models["acc"] = self._new_acc_model(seed).fit(X, y, sample_weight=w)
        self._models["rank"] = self._fit_ranker(X, y, tasks, seed)
        M = to_matrix(X)
        rank_forest = self.forest("rank")
        self.acc_spread = spread(self.forest("acc").predict(M, target=MEDIAN), tasks)
        self.rank_spread = spread(rank_forest.predict(M), tasks) if rank_forest else 1.0
        self.interval_margin, self.blend, self.blend_cv = 0.0, 0.0, {}
        self.interval_margins = {}
        want_blend = blend is None and self._models["rank"] is not None
        if (calibrate or want_blend) and group_column in rows and rows[group_column].nunique() >= 3:
            margin, chosen, means, margins = self._grouped_folds(
                X, y, w, tasks, rows[group_column], seed, calibrate, want_blend, rows)
            self.interval_margin = margin if calibrate else 0.0
            self.interval_margins = margins if calibrate else {}
            if want_blend:
                self.blend, self.blend_cv = chosen, means
        if blend is not None:
            self.blend = float(blend) if self._models["rank"] is not None else 0.0
        self.evidence = config_evidence(rows)
        self.support = Evidence.from_frame(rows)
        sources = rows["prov.source"] if "prov.source" in rows else pd.Series("own", index=rows.index)
        self.n_records = {str(k): int(v) for k, v in sources.value_counts().sort_index().items()}
        self._fit_cost(frame, seed)
        self.fitted_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        log.info("fitted meta-learner on %d records (%s), %d timed, blend %.2f", len(rows),
                 self.n_records, self.n_timed, self.blend)
        return self

    def _new_acc_model(self, seed: int) -> Any:
        import xgboost as xgb

        return xgb.XGBRegressor(
            objective="reg:quantileerror", quantile_alpha=np.array(QUANTILES),
            enable_categorical=True, random_state=seed, **self.acc_params,
        )

    def _fit_ranker(self, X: pd.DataFrame, y: np.ndarray, tasks: np.ndarray, seed: int) -> Any:
        """The pairwise ranker, or None when no task has two runs to compare. Source weights
        weight each task (query group) by its source (the part of the task id after '|')."""
        import pandas as pd

        counts = pd.Series(tasks).value_counts()
        if not (counts >= 2).any():
            return None
        group_weight = None
        if self.source_weight:
            group_weight = {t: float(self.source_weight.get(t.rsplit("|", 1)[-1], 1.0))
                            for t in counts.index}
        return fit_ranker(X, y, tasks, self.rank_params, seed, group_weight)

    def _grouped_folds(self, X: pd.DataFrame, y: np.ndarray, w: np.ndarray, tasks: np.ndarray,
                       groups: pd.Series, seed: int, calibrate: bool, want_blend: bool,
                       rows: pd.DataFrame | None = None,
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
            model = self._new_acc_model(seed)
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
            ranker = self._fit_ranker(X.iloc[train_idx], y[train_idx], tasks[train_idx], seed)
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

    def _fit_cost(self, frame: pd.DataFrame, seed: int) -> None:
        import pandas as pd

        target = log_cost_target(frame) if len(frame) else pd.Series(dtype="float64")
        timed = frame.loc[target.notna()] if len(frame) else frame
        self.n_timed = int(len(timed))
        self._models["cost"], self.cost_c0, self.timed_models = None, DEFAULT_C0, []
        if self.n_timed == 0:
            return
        X = featurize(timed)
        shape = cost_prior_shape(X)
        y = target.loc[timed.index].to_numpy()
        self.cost_c0 = float(np.median(y - shape))
        self.timed_models = sorted(timed["cfg.model"].astype(str).unique())
        if self.n_timed >= MIN_TIMED:
            import xgboost as xgb

            model = xgb.XGBRegressor(objective="reg:squarederror", enable_categorical=True,
                                     random_state=seed, **self.cost_params)
            self._models["cost"] = model.fit(X[list(COST_FEATURES)], y,
                                             base_margin=shape + self.cost_c0)

    # --- predicting ----------------------------------------------------------------------------
    def predict(self, features: pd.DataFrame, *, intervals: bool = True,
                margins: np.ndarray | None = None) -> pd.DataFrame:
        """Per row of a `featurize` frame: acc, acc_lo, acc_hi (fractions), sec_per_img_epoch (CPU
        seconds per training image per epoch), time_is_estimate (model never timed here) and
        score (the ranking score: higher ranks first; see `blend`). `intervals=False` leaves
        acc_lo / acc_hi NaN (a third of the work)."""
        import pandas as pd

        columns = ["acc", "acc_lo", "acc_hi", "sec_per_img_epoch", "time_is_estimate", "score"]
        if not self.fitted:
            raise StoreError("the meta-learner is not fitted (run `metallmix fit`)")
        if len(features) == 0:
            return pd.DataFrame(columns=columns)
        X = features[list(FEATURE_COLUMNS)]
        out = self.predict_matrix(to_matrix(X), intervals=intervals, margins=margins,
                                  model_codes=X["model"].cat.codes.to_numpy())
        return pd.DataFrame({c: out[c] for c in columns}, index=features.index)

    def predict_matrix(self, M: np.ndarray, *, intervals: bool = True, cost: bool = True,
                       score: bool = True, model_codes: np.ndarray | None = None,
                       margins: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """`predict` on a `features.to_matrix` array (columns `FEATURE_COLUMNS`): a dict of arrays.
        `cost=False` skips the training-time model (sec_per_img_epoch NaN), `score=False` the
        ranker (score NaN); `margins` (per row) replaces the pooled interval margin (see
        `margins_for`)."""
        acc_forest = self.forest("acc")
        if acc_forest is None:
            raise StoreError("the meta-learner is not fitted (run `metallmix fit`)")
        n = M.shape[0]
        median = acc_forest.predict(M, target=MEDIAN)
        out: dict[str, np.ndarray] = {"acc": np.clip(median, 0.0, 1.0)}
        if intervals:
            # The median is kept as fitted (so SHAP explains it exactly); the interval ends are
            # moved out to include it where the fitted quantile curves cross, then widened by
            # the calibration margin.
            margin = self.interval_margin if margins is None else np.asarray(margins, dtype="float64")
            lo = np.minimum(acc_forest.predict(M, target=0), median) - margin
            hi = np.maximum(acc_forest.predict(M, target=2), median) + margin
            out["acc_lo"], out["acc_hi"] = np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)
        else:
            out["acc_lo"] = out["acc_hi"] = np.full(n, np.nan)
        if score:
            rank_forest = self.forest("rank") if self.blend > 0 else None
            ranker = rank_forest.predict(M) if rank_forest is not None else None
            out["score"] = blend_score(median, ranker, self.blend, self.acc_spread,
                                       self.rank_spread)
        else:
            out["score"] = np.full(n, np.nan)
        if cost:
            cols = [FEATURE_COLUMNS.index(c) for c in COST_FEATURES]
            margin = cost_prior_matrix(M) + self.cost_c0
            cost_forest = self.forest("cost")
            log_sec = cost_forest.predict(M[:, cols], base_margin=margin) if cost_forest else margin
            out["sec_per_img_epoch"] = np.exp(np.asarray(log_sec, dtype="float64"))
        else:
            out["sec_per_img_epoch"] = np.full(n, np.nan)
        codes = model_codes if model_codes is not None else M[:, FEATURE_COLUMNS.index("model")]
        timed = [CATEGORIES["model"].index(m) for m in self.timed_models if m in CATEGORIES["model"]]
        out["time_is_estimate"] = ~np.isin(np.nan_to_num(np.asarray(codes, dtype="float64"),
                                                         nan=-1), timed)
        return out
    def extrapolated(self, configs: pd.DataFrame | Mapping[str, Any]) -> list[list[str]]:
        """Per row of a `cfg.*` frame (or a mapping of `cfg.*` columns to arrays): the config
        fields whose value lies outside the training evidence (a value never seen, or a number
        outside the range seen)."""
        names, matrix = self.extrapolation_flags(configs)
        return flag_names(names, matrix, range(len(matrix)))

    def extrapolation_flags(self, configs: pd.DataFrame | Mapping[str, Any]
                            ) -> tuple[list[str], np.ndarray]:
        """`extrapolated` as (field names, bool matrix rows x fields)."""
        flags: dict[str, np.ndarray] = {}
        n_rows = len(configs) if hasattr(configs, "columns") else len(
            next(iter(configs.values()), []))
        for name in EVIDENCE_CATEGORICAL:
            seen = self.evidence.get(name)
            if seen is not None and f"cfg.{name}" in configs:
                values = np.asarray(configs[f"cfg.{name}"], dtype=object)
                flags[name] = ~np.isin(values, np.asarray(seen, dtype=object))
        for name in EVIDENCE_NUMERIC:
            seen = self.evidence.get(name)
            if seen is not None and f"cfg.{name}" in configs:
                v = _as_float(configs[f"cfg.{name}"])
                flags[name] = (v < seen[0] - 1e-12) | (v > seen[1] + 1e-12)
        names = list(flags)
        if not names:
            return [], np.zeros((n_rows, 0), dtype=bool)
        return names, np.column_stack([flags[n] for n in names])

    def margins_for(self, configs: Sequence[TrainConfig]) -> np.ndarray | None:
        """The interval margin of each config by its support stratum (None: the pooled margin
        applies, e.g. a learner fitted without calibration or without its runs)."""
        if not self.interval_margins or not len(self.support):
            return None
        strata = support_stratum(self.support.n_datasets(configs), configs)
        return np.array([self.interval_margins.get(s, self.interval_margin) for s in strata])

    def predict_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """`predict(featurize(frame))`: predictions for flat records, each interval with the
        margin of its config's support stratum."""
        margins = self.margins_for(configs_of(frame)) if self.interval_margins else None
        return self.predict(featurize(frame), margins=margins)


def flag_names(names: list[str], matrix: np.ndarray, rows: Iterable[int]) -> list[list[str]]:
    """The flagged field names of some rows of an `extrapolation_flags` matrix."""
    return [[names[j] for j in np.flatnonzero(matrix[i])] for i in rows]


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
