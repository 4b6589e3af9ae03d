"""The fitted meta-learner on disk: a versioned artifact directory, refitted when stale.

Layout (`paths.artifacts_dir()/metalearner/` by default)::

    accuracy.ubj     XGBoost quantile model (UBJSON)
    rank.ubj         XGBoost pairwise ranker (format 2), when the records form tasks to rank within
    cost.ubj         XGBoost cost-residual model, only when enough runs were timed
    forests.npz      the same boosters as NumPy arrays (`forest.Forest`): what `load` reads, so a
                     recommendation never imports xgboost; the .ubj files load only on demand
    metadata.json    format version, package/code version, fitted_at, records per source,
                     feature columns and category lists, a hash of the training data, the
                     calibration margin, the ranking blend (weight, spreads, its CV regrets),
                     the cost prior constant, the evidence ranges, CV scores

Format history: 1 = accuracy + cost models; 2 = + the pairwise ranker, the blend and forests.npz.

The directory is written next to the target and swapped in, so a reader never sees half of it.
`load_or_fit(store)` returns the saved learner when its data hash equals the store's current one
(and the format, features and categories match this code), else fits, saves and returns a new one.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge import __version__, paths
from knowledge.errors import StoreError
from knowledge.meta_dataset.shipped import open_store
from knowledge.metalearner import cputime
from knowledge.metalearner import model as _model
from knowledge.metalearner.features import CATEGORIES, FEATURE_COLUMNS
from knowledge.metalearner.forest import load_forests, save_forests
from knowledge.metalearner.model import QUANTILES, MetaLearner
from knowledge.metalearner.support import Evidence
from knowledge.metalearner.targets import TIMING_ONLY_STUDIES

if TYPE_CHECKING:
    import pandas as pd

    from knowledge.runs.store import RunStore

log = logging.getLogger(__name__)

FORMAT_VERSION = 3
ACC_FILE, COST_FILE, RANK_FILE, META_FILE = "accuracy.ubj", "cost.ubj", "rank.ubj", "metadata.json"
SUPPORT_FILE = "support.json"  # the runs behind the fit (knowledge.metalearner.support.Evidence)
FOREST_FILE = "forests.npz"
_MODEL_FILES = {"acc": ACC_FILE, "cost": COST_FILE, "rank": RANK_FILE}
# The columns a fit reads; the data hash covers exactly these (sorted by run_id).
_HASH_PREFIXES = ("mf.", "cfg.")
_HASH_COLUMNS = ("run_id", "base_dataset", "status", "prov.source", "prov.device", "prov.threads", "out.test_acc",
                 "out.val_acc", "out.train_seconds", "out.epochs_completed")


def default_dir() -> Path:
    """`paths.artifacts_dir()/metalearner`."""
    return paths.artifacts_dir() / "metalearner"


def data_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of the columns a fit uses, rows sorted by run_id: same data -> same hash."""
    if len(frame) == 0:
        return hashlib.sha256(b"empty").hexdigest()
    columns = sorted(c for c in frame.columns if c.startswith(_HASH_PREFIXES) or c in _HASH_COLUMNS)
    part = frame[columns]
    if "run_id" in part:
        part = part.sort_values("run_id", kind="stable")
    text = part.to_csv(index=False, float_format="%.10g", na_rep="")
    return hashlib.sha256(text.encode()).hexdigest()


def metadata(learner: MetaLearner, *, cv: dict[str, Any] | None = None) -> dict[str, Any]:
    """The metadata.json content of a fitted learner."""
    import xgboost as xgb

    return {
        "format_version": FORMAT_VERSION,
        "timing_only_studies": list(TIMING_ONLY_STUDIES),
        "package_version": __version__,
        "code_version": paths.code_version(),
        "xgboost_version": xgb.__version__,
        "fitted_at": learner.fitted_at,
        "n_records": learner.n_records,
        "n_timed": learner.n_timed,
        "data_hash": learner.data_hash,
        "feature_columns": list(FEATURE_COLUMNS),
        "categories": CATEGORIES,
        "quantiles": list(QUANTILES),
        "interval_margin": learner.interval_margin,
        "interval_margins": learner.interval_margins,
        "cost_c0": learner.cost_c0,
        "timed_models": learner.timed_models,
        "evidence": learner.evidence,
        "source_weight": learner.source_weight,
        "seed": learner.seed,
        "acc_params": learner.acc_params,
        # fitted with the code's default settings: refit when the defaults change (`incompatibility`)
        "default_params": _normal(learner.acc_params) == _normal(_model.ACC_PARAMS),
        "cost_params": learner.cost_params,
        "cost_target": cputime.target_definition(),
        "rank_params": learner.rank_params,
        "blend": learner.blend,
        "acc_spread": learner.acc_spread,
        "rank_spread": learner.rank_spread,
        "blend_cv": learner.blend_cv,
        "has_cost_model": learner.has_model("cost"),
        "has_rank_model": learner.has_model("rank"),
        "cv": cv,
    }


def save(learner: MetaLearner, directory: str | Path | None = None, *,
         cv: dict[str, Any] | None = None) -> Path:
    """Write the artifact directory (atomically replacing an old one); returns its path."""
    if not learner.fitted:
        raise StoreError("cannot save a meta-learner that is not fitted")
    target = Path(directory) if directory is not None else default_dir()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
        for name, filename in _MODEL_FILES.items():
            if learner.has_model(name):
                getattr(learner, f"{name}_model").save_model(tmp / filename)
        save_forests(tmp / FOREST_FILE, learner.forests)
        (tmp / META_FILE).write_text(json.dumps(metadata(learner, cv=cv), indent=2, default=str))
        (tmp / SUPPORT_FILE).write_text(json.dumps(learner.support.to_json()))
        old = target.with_name(f".{target.name}-old")
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        raise StoreError(f"cannot write the meta-learner artifact {target}: {exc}") from None
    log.info("saved meta-learner to %s", target)
    return target


def read_metadata(directory: str | Path | None = None) -> dict[str, Any]:
    """metadata.json of an artifact; StoreError when missing or unreadable."""
    path = (Path(directory) if directory is not None else default_dir()) / META_FILE
    if not path.is_file():
        raise StoreError(f"no meta-learner artifact at {path.parent} (run `metallmix fit`)")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: unreadable meta-learner metadata: {exc}") from None


def incompatibility(meta: dict[str, Any]) -> str | None:
    """Why an artifact cannot be used by this code (None when it can)."""
    if meta.get("format_version") != FORMAT_VERSION:
        return f"format version {meta.get('format_version')} (this code reads {FORMAT_VERSION})"
    if meta.get("feature_columns") != list(FEATURE_COLUMNS):
        return "its feature columns differ from this code's"
    if meta.get("categories") != CATEGORIES:
        return "its category lists differ from this code's"
    if meta.get("timing_only_studies") != list(TIMING_ONLY_STUDIES):
        return "it was fitted with other timing-only studies (or before they existed)"
    if meta.get("default_params", True) and _normal(meta.get("acc_params")) != _normal(_model.ACC_PARAMS):
        return "it was fitted with older default settings of the accuracy model"
    if meta.get("cost_target") != _normal(cputime.target_definition()):
        return "its time model was fitted to another target (before the validation pass was discounted)"
    return None


def _normal(params: Any) -> Any:
    """`params` as JSON reads them back (tuples as lists, keys as strings)."""
    return json.loads(json.dumps(params, default=str, sort_keys=True))


def load(directory: str | Path | None = None) -> MetaLearner:
    """The saved learner; StoreError when missing, corrupt or written by an incompatible version.

    Reads metadata.json and forests.npz only (NumPy): the XGBoost models load when first used."""
    directory = Path(directory) if directory is not None else default_dir()
    meta = read_metadata(directory)
    problem = incompatibility(meta)
    if problem:
        raise StoreError(f"meta-learner artifact {directory} is incompatible: {problem}; "
                         "refit with `metallmix fit`")
    try:
        forests = load_forests(directory / FOREST_FILE)
    except (OSError, ValueError, KeyError) as exc:
        raise StoreError(f"meta-learner artifact {directory}: cannot read {FOREST_FILE}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    expected = {"acc"} | {name for name in ("cost", "rank") if meta.get(f"has_{name}_model")}
    if set(forests) != expected:
        raise StoreError(f"meta-learner artifact {directory}: {FOREST_FILE} holds "
                         f"{sorted(forests)}, expected {sorted(expected)}")
    files = {name: directory / _MODEL_FILES[name] for name in expected}
    try:
        support = Evidence.from_json(json.loads((directory / SUPPORT_FILE).read_text()))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise StoreError(f"meta-learner artifact {directory}: cannot read {SUPPORT_FILE}: "
                         f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    return MetaLearner(
        support=support,
        cost_c0=float(meta["cost_c0"]),
        timed_models=list(meta.get("timed_models", [])),
        n_records=dict(meta.get("n_records", {})),
        n_timed=int(meta.get("n_timed", 0)),
        source_weight=meta.get("source_weight"),
        interval_margin=float(meta.get("interval_margin", 0.0)),
        interval_margins={k: float(v) for k, v in (meta.get("interval_margins") or {}).items()},
        evidence=dict(meta.get("evidence", {})),
        seed=int(meta.get("seed", 0)),
        fitted_at=meta.get("fitted_at"),
        data_hash=meta.get("data_hash"),
        acc_params=dict(meta.get("acc_params", {})),
        cost_params=dict(meta.get("cost_params", {})),
        rank_params=dict(meta.get("rank_params", {})),
        blend=float(meta.get("blend", 0.0)),
        acc_spread=float(meta.get("acc_spread", 1.0)),
        rank_spread=float(meta.get("rank_spread", 1.0)),
        blend_cv=dict(meta.get("blend_cv") or {}),
        forests=forests,
        model_files=files,
    )


def fit_frame(frame: pd.DataFrame, *, source_weight: dict[str, float] | None = None,
              seed: int = 0) -> MetaLearner:
    """A new learner fitted on `frame`, with the frame's data hash recorded."""
    learner = MetaLearner().fit(frame, source_weight=source_weight, seed=seed)
    learner.data_hash = data_hash(frame)
    return learner


def is_stale(frame: pd.DataFrame, directory: str | Path | None = None,
             *, source_weight: dict[str, float] | None = None) -> str | None:
    """Why the saved artifact does not fit `frame` (None when it is current)."""
    try:
        meta = read_metadata(directory)
    except StoreError:
        return "no artifact"
    problem = incompatibility(meta)
    if problem:
        return problem
    if meta.get("data_hash") != data_hash(frame):
        return "the training data changed"
    if (meta.get("source_weight") or None) != (source_weight or None):
        return "different source weights"
    return None


def load_or_fit(store: RunStore | None = None, *, directory: str | Path | None = None,
                source_weight: dict[str, float] | None = None) -> MetaLearner:
    """The saved learner if it is current for `store` (default: the user's run store), else a
    learner fitted on the store's records and saved to `directory`."""
    if store is None:
        store = open_store()
    frame = store.to_frame()
    reason = is_stale(frame, directory, source_weight=source_weight)
    if reason is None:
        try:
            return load(directory)
        except StoreError as exc:
            reason = str(exc)
    log.info("refitting the meta-learner: %s", reason)
    learner = fit_frame(frame, source_weight=source_weight)
    save(learner, directory)
    return learner
