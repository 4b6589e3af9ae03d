"""The fitted meta-learner on disk: a versioned artifact directory, refitted when stale.

Layout (`paths.artifacts_dir()/metalearner/` by default)::

    accuracy.ubj     XGBoost quantile model (UBJSON)
    cost.ubj         XGBoost cost-residual model, only when enough runs were timed
    metadata.json    format version, package/code version, fitted_at, records per source,
                     feature columns and category lists, a hash of the training data, the
                     calibration margin, the cost prior constant, the evidence ranges, CV scores

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

import pandas as pd
import xgboost as xgb

from knowledge import __version__, paths
from knowledge.errors import StoreError
from knowledge.metalearner.features import CATEGORIES, FEATURE_COLUMNS
from knowledge.metalearner.model import QUANTILES, MetaLearner

if TYPE_CHECKING:
    from knowledge.runs.store import RunStore

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
ACC_FILE, COST_FILE, META_FILE = "accuracy.ubj", "cost.ubj", "metadata.json"
# The columns a fit reads; the data hash covers exactly these (sorted by run_id).
_HASH_PREFIXES = ("mf.", "cfg.")
_HASH_COLUMNS = ("run_id", "base_dataset", "status", "prov.source", "prov.device", "out.test_acc",
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
    return {
        "format_version": FORMAT_VERSION,
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
        "cost_c0": learner.cost_c0,
        "timed_models": learner.timed_models,
        "evidence": learner.evidence,
        "source_weight": learner.source_weight,
        "seed": learner.seed,
        "acc_params": learner.acc_params,
        "cost_params": learner.cost_params,
        "has_cost_model": learner.cost_model is not None,
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
        learner.acc_model.save_model(tmp / ACC_FILE)
        if learner.cost_model is not None:
            learner.cost_model.save_model(tmp / COST_FILE)
        (tmp / META_FILE).write_text(json.dumps(metadata(learner, cv=cv), indent=2, default=str))
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
    return None


def load(directory: str | Path | None = None) -> MetaLearner:
    """The saved learner; StoreError when missing, corrupt or written by an incompatible version."""
    directory = Path(directory) if directory is not None else default_dir()
    meta = read_metadata(directory)
    problem = incompatibility(meta)
    if problem:
        raise StoreError(f"meta-learner artifact {directory} is incompatible: {problem}; "
                         "refit with `metallmix fit`")
    try:
        acc = xgb.XGBRegressor()
        acc.load_model(directory / ACC_FILE)
        cost = None
        if meta.get("has_cost_model"):
            cost = xgb.XGBRegressor()
            cost.load_model(directory / COST_FILE)
    except (OSError, xgb.core.XGBoostError) as exc:
        raise StoreError(f"meta-learner artifact {directory}: cannot load a model: "
                         f"{str(exc).splitlines()[0]}") from None
    return MetaLearner(
        acc_model=acc,
        cost_model=cost,
        cost_c0=float(meta["cost_c0"]),
        timed_models=list(meta.get("timed_models", [])),
        n_records=dict(meta.get("n_records", {})),
        n_timed=int(meta.get("n_timed", 0)),
        source_weight=meta.get("source_weight"),
        interval_margin=float(meta.get("interval_margin", 0.0)),
        evidence=dict(meta.get("evidence", {})),
        seed=int(meta.get("seed", 0)),
        fitted_at=meta.get("fitted_at"),
        data_hash=meta.get("data_hash"),
        acc_params=dict(meta.get("acc_params", {})),
        cost_params=dict(meta.get("cost_params", {})),
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
        from knowledge.meta_dataset.shipped import open_store

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
