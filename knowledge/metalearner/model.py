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

    Calibration (`knowledge.metalearner.calibration`): `fit` widens the interval by conformalized
    quantile regression over grouped folds of whole datasets, per stratum of evidence (Mondrian
    conformal, `interval_margins`), so a config with less support gets a wider interval (never a
    narrower one). The ranking never looks at the interval.

Ranking (`knowledge.metalearner.blend`)
    Configs are ranked by a score that blends the accuracy median with a pairwise ranker, the
    weight chosen by the same grouped folds as the calibration (docs:
    eval/results/metalearner_study.md); the accuracy model still gives the predicted accuracy, its
    interval and the SHAP explanation. So the top-ranked config is not always the one with the
    highest predicted accuracy.

Speed
    Predictions walk the trees with NumPy (`forest.Forest`, exact XGBoost semantics), so a learner
    loaded from its artifact answers without importing xgboost (and scikit-learn with it).

Cost (`knowledge.metalearner.cputime`)
    CPU seconds per image-epoch: a FLOPs-proxy prior times a constant fitted on CPU-timed runs,
    plus an XGBoost residual once enough runs are timed. Predictions for a model that was never
    timed here are flagged `time_is_estimate`.

Source of the records: rows from published papers and our own runs are pooled; `source_weight`
(e.g. `{"published": 1.0, "own": 2.0}`) weights them; the user's imported runs (source "user") weigh
as own runs unless "user" is given. `source` is deliberately not a feature: at
recommendation time there is no "source" to condition on, and the config columns (epochs,
resolution, lr, ...) already describe what differs between the two.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from knowledge.errors import StoreError
from knowledge.metalearner.blend import blend_score, fit_ranker, spread, task_ids
from knowledge.metalearner.boosters import LazyBoosters
from knowledge.metalearner.calibration import (  # noqa: F401
    CALIBRATION_FOLDS,
    MIN_STRATUM,
    STRATA,
    WELL_SUPPORTED,
    grouped_folds,
    support_stratum,
)
from knowledge.metalearner.cputime import (  # noqa: F401
    COST_FEATURES,
    COST_PARAMS,
    DEFAULT_C0,
    LINEAR_PROBE_FACTOR,
    MIN_TIMED,
    REFERENCE_RESOLUTION,
    cost_inputs,
    cost_prior_matrix,
    cost_prior_shape,
    fit_cost_model,
    log_cost_target,
    target_definition,
)
from knowledge.metalearner.extrapolation import (  # noqa: F401
    EVIDENCE_CATEGORICAL,
    EVIDENCE_NUMERIC,
    config_evidence,
    extrapolation_flags,
    flag_names,
)
from knowledge.metalearner.features import CATEGORIES, FEATURE_COLUMNS, featurize, to_matrix
from knowledge.metalearner.forest import Forest
from knowledge.metalearner.support import Evidence, configs_of
from knowledge.metalearner.targets import (  # noqa: F401
    MEDIAN,
    MIN_ACC_RECORDS,
    QUANTILES,
    _weights,
    accuracy_target,
    training_rows,
    weight_of,
)
from knowledge.search_space import TrainConfig

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

# The accuracy model's XGBoost settings (also the ranker's unless told otherwise). Defined here,
# where `MetaLearner` reads them, so that patching `model.ACC_PARAMS` / `model.COST_PARAMS` (tests,
# quick fits) changes what a new learner uses.
ACC_PARAMS: dict[str, Any] = dict(
    n_estimators=300,
    learning_rate=0.05,
    max_depth=4,
    min_child_weight=2.0,
    subsample=0.8,
    colsample_bytree=0.8,
    # four subsampled trees averaged per round (a boosted random forest): with one, the fit's seed
    # alone changed 13-18 of the 38 question picks; with four 5-7, at the same LODO regret
    # (docs/BENCHMARKS.md, "Recommendations on the production path", session 11); fits take ~3.4x
    num_parallel_tree=4,
    reg_lambda=1.0,
    tree_method="hist",
    max_cat_to_onehot=1,  # partition-based categorical splits
    # one thread: a few thousand rows gain nothing from more, and on a busy machine (a sweep
    # running beside it) XGBoost's default of all cores made fits 10-80x slower
    n_jobs=1,
)


def definition_fingerprint() -> str:
    """A short hash of what defines a fit apart from its data (the feature columns, the accuracy
    model's settings, the quantiles, the time model's target): results computed with another
    definition must not be mixed with these (e.g. the units of a long benchmark resumed after the
    learner changed)."""
    import hashlib
    import json

    text = json.dumps({"features": list(FEATURE_COLUMNS), "acc_params": ACC_PARAMS,
                       "quantiles": list(QUANTILES), **target_definition()},
                      sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:12]


class MetaLearner(LazyBoosters):
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
            margin, chosen, means, margins = grouped_folds(
                self, X, y, w, tasks, rows[group_column], seed, calibrate, want_blend, rows)
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
            group_weight = {t: weight_of(self.source_weight, t.rsplit("|", 1)[-1]) for t in counts.index}
        return fit_ranker(X, y, tasks, self.rank_params, seed, group_weight)

    def _fit_cost(self, frame: pd.DataFrame, seed: int) -> None:
        self._models["cost"], self.cost_c0, self.timed_models, self.n_timed = fit_cost_model(
            frame, seed, self.cost_params)

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
                       margins: np.ndarray | None = None, threads: float | None = None
                       ) -> dict[str, np.ndarray]:
        """`predict` on a `features.to_matrix` array (columns `FEATURE_COLUMNS`): a dict of arrays.
        `cost=False` skips the training-time model (sec_per_img_epoch NaN), `score=False` the
        ranker (score NaN); `margins` (per row) replaces the pooled interval margin (see
        `margins_for`); `threads`: the CPU threads training will use (None: `ASSUMED_THREADS`)."""
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
            margin = cost_prior_matrix(M) + self.cost_c0
            cost_forest = self.forest("cost")
            log_sec = (cost_forest.predict(cost_inputs(M, threads, cost_forest.feature_names),
                                           base_margin=margin) if cost_forest else margin)
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
        return extrapolation_flags(self.evidence, configs)

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


# Grouped CV lives in `cv` (which imports this module lazily); re-exported for old imports.
from knowledge.metalearner.cv import CVResult, grouped_cv  # noqa: E402,F401
