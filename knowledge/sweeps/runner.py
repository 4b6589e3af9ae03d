"""`run_sweep`: random search / TPE over the search space on several datasets, with Optuna.

    report = run_sweep(["digits", "medmnist:breastmnist?n=200&seed=0"], trials=20, workers=2)

Flow: every source is loaded first (a bad one raises `DatasetError` before any trial); one study per
source is created or resumed in the RDB storage (see `knowledge.sweeps.study`); the trials still
missing per source are split among `workers`; each worker runs `study.optimize` on each source in
turn. `workers == 1` runs in this process; more are spawned processes sharing the storage and the
run store, each training with `cpu_count // workers` torch threads. A worker loads each dataset
once (cached). An overall progress bar counts finished trials across sources (resumed ones
included) and prints one line per trial; without the bar the lines go to the log (INFO).

Ctrl-C stops the sweep (`KeyboardInterrupt` propagates); re-running the same call resumes it.
Workers are spawned, so a script that calls `run_sweep(..., workers=2)` needs the usual
`if __name__ == "__main__":` guard (the `metallmix` command has it).

Workers die with the sweep process: when it ends, even killed with SIGKILL, each worker gets SIGTERM
(Linux: `PR_SET_PDEATHSIG`; elsewhere a thread waiting on the parent's sentinel), which stops it
like Ctrl-C (its run is stored as `cancelled`, its trial fails), and it exits at the latest
`ORPHAN_GRACE_S` seconds later. However many processes or sessions sweep a study, it never gets more
than `trials` finished-or-running trials (`_Admission`, `study.trials_taken`), and a resumed sweep
first fails and retries the trials of processes that are gone (`study.reap_dead_trials`).

The modules: `worker` (what one worker does: `run_worker`, `SweepJob`, `TrialEvent`), `processes`
(spawned workers) and this one (`run_sweep`: loading, the studies, the progress bar, the report).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna

from knowledge.errors import ConfigError
from knowledge.runs.storages import mask_url
from knowledge.runs.store import RunStore
from knowledge.search_space import CPU_SPACE, SearchSpace
from knowledge.sweeps.backend import REAL, Backend
from knowledge.sweeps.processes import _run_processes
from knowledge.sweeps.report import SweepReport, source_report
from knowledge.sweeps.study import (
    HEARTBEAT_INTERVAL_S,
    SAMPLERS,
    count_finished,
    make_sampler,
    open_storage,
    reap_dead_trials,
    retry_races,
    storage_url,
    study_name,
    trials_taken,
)
from knowledge.sweeps.worker import (
    SourceJob,
    SweepJob,
    TrialEvent,
    _dataset,
    _quiet_optuna,
    run_worker,
)

log = logging.getLogger(__name__)


# --- progress ------------------------------------------------------------------------------------
class _Progress:
    """An overall bar over all sources' trials (rich, on stderr) with one line per trial."""

    def __init__(self, total: int, completed: int, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), TimeRemainingColumn(),
                                 console=Console(stderr=True))
            self._task = self._bar.add_task("sweep", total=total, completed=completed)

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def on_event(self, event: TrialEvent) -> None:
        if self._bar is None:
            log.info("%s", event.line())
            return
        self._bar.console.print(event.line(), highlight=False)
        if event.finished:
            self._bar.advance(self._task)


# --- the public entry point ----------------------------------------------------------------------
def cpu_count() -> int:
    """CPUs this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _split(n: int, workers: int) -> tuple[int, ...]:
    return tuple(n // workers + (1 if i < n % workers else 0) for i in range(workers))


def run_sweep(
    sources: Sequence[str],
    *,
    trials: int,
    sampler: str = "tpe",
    warmup: int | None = None,
    workers: int = 1,
    space: SearchSpace = CPU_SPACE,
    storage: str | Path | None = None,
    store_path: Path | None = None,
    trial_time_budget_s: float | None = 300,
    seed: int = 0,
    study_prefix: str = "metallmix",
    progress: bool = True,
    heartbeat_interval: int = HEARTBEAT_INTERVAL_S,
    grace_period: int | None = None,
    backend: Backend | None = None,
) -> SweepReport:
    """Sweep every source up to `trials` finished trials (resuming what the storage holds).

    `sampler`: 'random' or 'tpe' (`warmup`: TPE's first random trials, Optuna's default 10).
    `seed`: seeds the samplers (trial `n` draws from (seed, n): `study._TrialSeeded`) and every training run.
    `storage`: SQLite file or SQLAlchemy URL (default `<home>/sweeps.sqlite`); `store_path`: the run
    store (default `paths.store_path()`). `heartbeat_interval`/`grace_period` (seconds): when a
    trial whose process died is failed and retried. `backend`: the loader/trainer (default: the real
    `knowledge.datasets.load_dataset` and `knowledge.training.train`; fakes in tests).
    """
    started = time.perf_counter()
    backend = backend or REAL
    if trials < 1:
        raise ConfigError(f"--trials {trials}: must be at least 1")
    if workers < 1:
        raise ConfigError(f"--workers {workers}: must be at least 1")
    if trial_time_budget_s is not None and not 0 < trial_time_budget_s < float("inf"):
        raise ConfigError(f"--trial-budget {trial_time_budget_s:g}: must be a positive number of seconds")
    if sampler not in SAMPLERS:
        raise ConfigError(f"sampler {sampler!r}: unknown; allowed: {', '.join(SAMPLERS)}")
    make_sampler(sampler, seed=seed, warmup=warmup)  # checks warmup
    if not sources:
        raise ConfigError("no sources to sweep: name at least one dataset")

    try:
        # 1. every source loads before any trial starts
        ids: dict[str, str] = {}
        for spec in sources:
            dataset_id = _dataset(backend.load_dataset, spec).id
            if dataset_id not in ids.values():
                ids[spec] = dataset_id
        if workers > 1:
            _dataset.cache_clear()  # the workers load their own copies

        # 2. create or resume one study per source
        url = storage_url(storage)
        rdb = open_storage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period)
        store = RunStore(store_path)  # fails now, not in a worker, if the store is unusable
        jobs, already = _source_jobs(rdb, ids, sampler=sampler, trials=trials, workers=workers,
                                     prefix=study_prefix, space=space)
        job = SweepJob(
            sources=tuple(jobs), storage_url=url, heartbeat_interval=heartbeat_interval,
            grace_period=grace_period, sampler=sampler, warmup=warmup, trials=trials, space=space,
            store_path=store.url, trial_time_budget_s=trial_time_budget_s, seed=seed,
            num_threads=max(1, cpu_count() // workers), backend=backend,
        )
        active = [w for w in range(workers) if any(s.quota[w] > 0 for s in jobs)]
        log.info("sweep: %d source(s) x %d trials, %d already finished, %d worker(s), storage %s",
                 len(jobs), trials, already, len(active), mask_url(url))

        # 3. run
        with _Progress(len(jobs) * trials, already, progress) as bar:
            if workers == 1 and active:
                run_worker(job, 0, bar.on_event, storage=rdb)
            elif active:
                _run_processes(job, active, bar.on_event)
    finally:
        _dataset.cache_clear()

    # 4. report from the storage (all sessions)
    with _quiet_optuna():
        reports = [
            source_report(optuna.load_study(study_name=s.study, storage=rdb), s.spec, s.dataset_id)
            for s in jobs
        ]
    return SweepReport(sampler=sampler, trials=trials, storage=mask_url(url), store=str(store.path),
                       sources=reports, seconds=round(time.perf_counter() - started, 3))


def _source_jobs(rdb: optuna.storages.BaseStorage, ids: dict[str, str], *, sampler: str, trials: int,
                 workers: int, prefix: str, space: SearchSpace) -> tuple[list[SourceJob], int]:
    """Create or resume each source's study; its missing trials split among workers. Also returns
    how many trials are already finished (counted up to `trials` per source).

    On resume, the RUNNING trials of processes that are gone are failed (and queued for a retry)
    first; the trials still running in other processes count as taken, so this sweep only runs the
    rest."""
    jobs, already = [], 0
    with _quiet_optuna():
        for spec, dataset_id in ids.items():
            name = study_name(dataset_id, sampler, prefix)
            study = retry_races(lambda: optuna.create_study(  # noqa: B023 - called at once
                storage=rdb, study_name=name, direction="maximize", load_if_exists=True))
            for key, value in (("dataset_id", dataset_id), ("space", space.name)):
                if study.user_attrs.get(key) != value:  # sessions on other machines set it too
                    retry_races(lambda: study.set_user_attr(key, value))  # noqa: B023
            dead = reap_dead_trials(study)
            if dead:
                log.info("%s: trial(s) %s of a process that is gone failed; they are retried", name,
                         ", ".join(map(str, dead)))
            already += min(count_finished(study), trials)
            missing = max(0, trials - trials_taken(study))
            jobs.append(SourceJob(spec, dataset_id, name, _split(missing, workers)))
    return jobs, already


__all__ = ["SourceJob", "SweepJob", "TrialEvent", "cpu_count", "run_sweep", "run_worker"]
