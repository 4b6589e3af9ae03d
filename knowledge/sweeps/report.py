"""What a sweep reports: per source, its finished trials, ok/failed counts and best config.

Built from the Optuna storage, so it covers every session of a resumed sweep.
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.trial import TrialState
from pydantic import BaseModel

from knowledge.sweeps.study import is_finished


class SourceReport(BaseModel):
    """One source's study."""

    source: str
    dataset_id: str
    study: str
    finished: int
    ok: int
    failed: int
    best_val_acc: float | None = None
    best_config: dict[str, Any] | None = None
    best_run_id: str | None = None
    best_trial: int | None = None
    seconds: float = 0.0  # training time summed over finished trials (all sessions)


class SweepReport(BaseModel):
    """A whole sweep."""

    sampler: str
    trials: int
    storage: str
    store: str
    sources: list[SourceReport]
    seconds: float  # wall time of this call

    @property
    def finished(self) -> int:
        return sum(s.finished for s in self.sources)


def source_report(study: optuna.Study, source: str, dataset_id: str) -> SourceReport:
    """Summarise one study's trials."""
    finished = [t for t in study.get_trials(deepcopy=False) if is_finished(t)]
    complete = [t for t in finished if t.state == TrialState.COMPLETE and t.value is not None]
    best = max(complete, key=lambda t: (t.value, -t.number), default=None)
    seconds = sum(
        float(t.user_attrs.get("seconds") or (t.duration.total_seconds() if t.duration else 0.0))
        for t in finished
    )
    return SourceReport(
        source=source,
        dataset_id=dataset_id,
        study=study.study_name,
        finished=len(finished),
        ok=len(complete),
        failed=len(finished) - len(complete),
        best_val_acc=None if best is None else float(best.value),
        best_config=None if best is None else best.user_attrs.get("config"),
        best_run_id=None if best is None else best.user_attrs.get("run_id"),
        best_trial=None if best is None else best.number,
        seconds=round(seconds, 3),
    )
