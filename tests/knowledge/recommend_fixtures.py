"""A small run store and a meta-learner fitted on it once per test process, for the tests of
`knowledge.recommend`, the tools and `metallmix recommend` (fitting takes seconds; loading doesn't)."""

from __future__ import annotations

import tempfile
from functools import lru_cache
from pathlib import Path

from knowledge.metalearner import artifact
from knowledge.metalearner.model import ACC_PARAMS, COST_PARAMS, MetaLearner
from knowledge.recommend import artifact_dirs
from knowledge.runs.store import RunStore
from tests.knowledge.synthetic_runs import synthetic_records

PER_DATASET = 12
# One thread: on a busy 2-core machine XGBoost's default threading made a 72-run fit take ~30 s.
SMALL_ACC_PARAMS = dict(ACC_PARAMS, n_estimators=60, n_jobs=1)
SMALL_COST_PARAMS = dict(COST_PARAMS, n_estimators=50, n_jobs=1)


def store_with_runs(path: str | Path) -> RunStore:
    """A run store holding the synthetic runs (6 datasets x PER_DATASET)."""
    store = RunStore(path)
    store.add_many(synthetic_records(per_dataset=PER_DATASET))
    return store


@lru_cache(maxsize=1)
def fitted_learner() -> MetaLearner:
    """A learner fitted on exactly what `store_with_runs` holds (same data hash)."""
    with tempfile.TemporaryDirectory() as tmp:
        frame = store_with_runs(Path(tmp) / "runs.sqlite").to_frame()
    learner = MetaLearner(acc_params=SMALL_ACC_PARAMS, cost_params=SMALL_COST_PARAMS).fit(frame)
    learner.data_hash = artifact.data_hash(frame)
    return learner


def ready_store(path: str | Path) -> RunStore:
    """`store_with_runs` plus its saved learner artifact, so an Advisor loads instead of fitting."""
    store = store_with_runs(path)
    artifact.save(fitted_learner(), artifact_dirs(store)[0])
    return store


def small_fits(monkeypatch) -> None:  # noqa: ANN001 - pytest.MonkeyPatch
    """Make any fit in this test (e.g. a refit after the store changed) small and single-threaded."""
    from knowledge.metalearner import model

    monkeypatch.setattr(model, "ACC_PARAMS", SMALL_ACC_PARAMS)
    monkeypatch.setattr(model, "COST_PARAMS", SMALL_COST_PARAMS)
