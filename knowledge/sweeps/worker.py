"""What one sweep worker does (`run_worker`): each source's share of the trials, one Optuna study
per source, admitting a trial only while the study has fewer than `trials` finished or running
(`_Admission`), and reporting each trial as a `TrialEvent`. `SweepJob` / `SourceJob` carry
everything a worker needs (picklable, for spawned processes)."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import optuna
from optuna.trial import FrozenTrial

from knowledge.datasets.base import ImageDataset
from knowledge.runs.store import RunStore
from knowledge.search_space import SearchSpace
from knowledge.sweeps.backend import Backend
from knowledge.sweeps.objective import Objective, RunNotOk
from knowledge.sweeps.study import (
    OWNER_ATTR,
    StopAtFinished,
    is_finished,
    make_sampler,
    open_storage,
    owner_tag,
    trials_taken,
)

log = logging.getLogger(__name__)

SKIPPED_ATTR = "skipped"  # user attribute of a trial that was not run: the study had enough trials


# --- events a worker reports -------------------------------------------------------------------
@dataclass(frozen=True)
class TrialEvent:
    """One trial ended (finished or interrupted)."""

    source: str
    study: str
    number: int
    model: str | None
    status: str | None
    val_acc: float | None
    seconds: float | None
    finished: bool

    def line(self) -> str:
        acc = "-" if self.val_acc is None else f"{self.val_acc:.4f}"
        secs = "-" if self.seconds is None else f"{self.seconds:.1f}s"
        return (f"{self.source} trial {self.number}: {self.model or '?'} "
                f"{self.status or 'interrupted'} val_acc={acc} {secs}")


class _Reporter:
    """Optuna callback: hand a `TrialEvent` to `sink` after each trial."""

    def __init__(self, source: str, sink: Callable[[Any], None]) -> None:
        self.source, self.sink = source, sink

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        attrs = trial.user_attrs
        if SKIPPED_ATTR in attrs:
            return
        self.sink(TrialEvent(
            source=self.source, study=study.study_name, number=trial.number,
            model=attrs.get("model") or trial.params.get("model"), status=attrs.get("status"),
            val_acc=attrs.get("val_acc"), seconds=attrs.get("seconds"), finished=is_finished(trial),
        ))


# --- the work a worker does ---------------------------------------------------------------------
@dataclass(frozen=True)
class SourceJob:
    spec: str
    dataset_id: str
    study: str
    quota: tuple[int, ...]  # trials to run, per worker


@dataclass(frozen=True)
class SweepJob:
    """Everything a worker needs (picklable: it travels to spawned processes)."""

    sources: tuple[SourceJob, ...]
    storage_url: str
    heartbeat_interval: int
    grace_period: int | None
    sampler: str
    warmup: int | None
    trials: int
    space: SearchSpace
    store_path: Path
    trial_time_budget_s: float | None
    seed: int
    num_threads: int
    backend: Backend


class _StudyFull(Exception):
    """A trial was not run: the study already had its trials finished or running."""


class _Admission:
    """The objective of a sweep trial, run only if fewer than `trials` trials numbered below this one
    are finished, running or queued (in any process, on any machine). Trial numbers are handed out one
    at a time by the storage (under a row lock on the study, on SQLite and PostgreSQL alike), so
    concurrent processes cannot both take the last place. The trial also records the
    process that runs it (`OWNER_ATTR`), so a resumed sweep can tell a dead trial at once."""

    def __init__(self, objective: Callable[[optuna.Trial], float], trials: int) -> None:
        self.objective, self.trials = objective, trials

    def __call__(self, trial: optuna.Trial) -> float:
        trial.storage.set_trial_system_attr(trial._trial_id, OWNER_ATTR, owner_tag(trial.number))
        taken = trials_taken(trial.study, before=trial.number)
        if taken >= self.trials:
            trial.set_user_attr(SKIPPED_ATTR, f"the study had {taken} trials finished or running")
            raise _StudyFull(f"trial {trial.number} not run: {taken} of {self.trials} trials are taken")
        return self.objective(trial)


@functools.lru_cache(maxsize=2)
def _dataset(loader: Callable[[str], ImageDataset], spec: str) -> ImageDataset:
    """A dataset, loaded once per process (sources are swept one after the other)."""
    return loader(spec)


@contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs every trial (and a traceback per failed run); our own lines replace them."""
    old = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(old)


def run_worker(job: SweepJob, worker: int, sink: Callable[[Any], None],
               storage: optuna.storages.RDBStorage | None = None) -> None:
    """Run worker `worker`'s share of the trials of every source, reporting each to `sink`
    (`storage`: an open one to reuse, else opened from `job.storage_url`)."""
    storage = storage or open_storage(job.storage_url, heartbeat_interval=job.heartbeat_interval,
                                      grace_period=job.grace_period)
    store = RunStore(job.store_path)
    with _quiet_optuna():
        for src in job.sources:
            if src.quota[worker] <= 0:
                continue
            dataset = _dataset(job.backend.load_dataset, src.spec)
            # each trial draws from (seed, its number): workers and machines never repeat a draw
            sampler = make_sampler(job.sampler, seed=job.seed, warmup=job.warmup, per_trial=True)
            study = optuna.load_study(study_name=src.study, storage=storage, sampler=sampler)
            if trials_taken(study) >= job.trials:  # other processes did this source's trials
                continue
            objective = Objective(dataset, job.space, job.backend, store=store, seed=job.seed,
                                  time_budget_s=job.trial_time_budget_s, num_threads=job.num_threads)
            study.optimize(_Admission(objective, job.trials), n_trials=src.quota[worker],
                           catch=(RunNotOk, _StudyFull),
                           callbacks=[StopAtFinished(job.trials), _Reporter(src.spec, sink)],
                           gc_after_trial=True)
