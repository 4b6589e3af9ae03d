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
"""

from __future__ import annotations

import functools
import logging
import multiprocessing as mp
import os
import queue as queue_mod
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import optuna
from optuna.trial import FrozenTrial

from knowledge.datasets.base import ImageDataset
from knowledge.errors import ConfigError, MetaLLMiXError, TrainingError
from knowledge.runs.store import RunStore
from knowledge.search_space import CPU_SPACE, SearchSpace
from knowledge.sweeps.backend import REAL, Backend
from knowledge.sweeps.objective import Objective, RunNotOk
from knowledge.sweeps.report import SweepReport, source_report
from knowledge.sweeps.study import (
    HEARTBEAT_INTERVAL_S,
    SAMPLERS,
    StopAtFinished,
    count_finished,
    is_finished,
    make_sampler,
    open_storage,
    sampler_seed,
    storage_url,
    study_name,
)

log = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class _WorkerDone:
    worker: int
    error: str | None = None
    interrupted: bool = False


class _Reporter:
    """Optuna callback: hand a `TrialEvent` to `sink` after each trial."""

    def __init__(self, source: str, sink: Callable[[Any], None]) -> None:
        self.source, self.sink = source, sink

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        attrs = trial.user_attrs
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
            n_existing = len(storage.get_all_trials(storage.get_study_id_from_name(src.study),
                                                    deepcopy=False))
            sampler = make_sampler(job.sampler, seed=sampler_seed(job.seed, worker, n_existing),
                                   warmup=job.warmup)
            study = optuna.load_study(study_name=src.study, storage=storage, sampler=sampler)
            objective = Objective(dataset, job.space, job.backend, store=store, seed=job.seed,
                                  time_budget_s=job.trial_time_budget_s, num_threads=job.num_threads)
            study.optimize(objective, n_trials=src.quota[worker], catch=(RunNotOk,),
                           callbacks=[StopAtFinished(job.trials), _Reporter(src.spec, sink)],
                           gc_after_trial=True)


def _worker_main(job: SweepJob, worker: int, events: Any) -> None:
    """Entry point of a spawned worker: every outcome ends with a `_WorkerDone` on the queue."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run_worker(job, worker, events.put)
    except KeyboardInterrupt:
        events.put(_WorkerDone(worker, interrupted=True))
    except MetaLLMiXError as exc:
        events.put(_WorkerDone(worker, error=str(exc)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent as one line
        log.exception("sweep worker %d failed", worker)
        events.put(_WorkerDone(worker, error=f"{type(exc).__name__}: {exc}".splitlines()[0]))
    else:
        events.put(_WorkerDone(worker))


def _run_processes(job: SweepJob, workers: Sequence[int], on_event: Callable[[Any], None]) -> None:
    """Run `workers` as spawned processes; relay their events; raise the first worker error."""
    ctx = mp.get_context("spawn")
    events = ctx.Queue()
    procs = {w: ctx.Process(target=_worker_main, args=(job, w, events), name=f"metallmix-sweep-{w}")
             for w in workers}
    for proc in procs.values():
        proc.start()
    done: dict[int, _WorkerDone] = {}

    def handle(msg: Any) -> None:
        if isinstance(msg, _WorkerDone):
            done[msg.worker] = msg
        else:
            on_event(msg)

    try:
        while len(done) < len(procs):
            try:
                handle(events.get(timeout=0.5))
                continue
            except queue_mod.Empty:
                pass
            dead = [w for w, p in procs.items() if w not in done and p.exitcode is not None]
            if dead:  # drain what they sent before exiting, then call the silent ones crashed
                try:
                    while True:
                        handle(events.get(timeout=1.0))
                except queue_mod.Empty:
                    pass
                for w in dead:
                    if w not in done:
                        done[w] = _WorkerDone(w, error=f"worker {w} died (exit code {procs[w].exitcode})")
    finally:
        for proc in procs.values():
            proc.join(timeout=30)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
    if any(d.interrupted for d in done.values()):
        raise KeyboardInterrupt
    errors = [d.error for d in sorted(done.values(), key=lambda d: d.worker) if d.error]
    if errors:
        raise TrainingError(f"sweep worker failed: {errors[0]}")


# --- progress ------------------------------------------------------------------------------------
class _Progress:
    """An overall bar over all sources' trials (rich, on stderr) with one line per trial."""

    def __init__(self, total: int, completed: int, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        if enabled:
            from rich.console import Console
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                       TimeElapsedColumn, TimeRemainingColumn)

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
    `seed`: seeds the samplers (see `study.sampler_seed`) and every training run.
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
    if trial_time_budget_s is not None and not trial_time_budget_s > 0:
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
            store_path=store.path, trial_time_budget_s=trial_time_budget_s, seed=seed,
            num_threads=max(1, cpu_count() // workers), backend=backend,
        )
        active = [w for w in range(workers) if any(s.quota[w] > 0 for s in jobs)]
        log.info("sweep: %d source(s) x %d trials, %d already finished, %d worker(s), storage %s",
                 len(jobs), trials, already, len(active), url)

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
    return SweepReport(sampler=sampler, trials=trials, storage=url, store=str(store.path),
                       sources=reports, seconds=round(time.perf_counter() - started, 3))


def _source_jobs(rdb: optuna.storages.BaseStorage, ids: dict[str, str], *, sampler: str, trials: int,
                 workers: int, prefix: str, space: SearchSpace) -> tuple[list[SourceJob], int]:
    """Create or resume each source's study; its missing trials split among workers. Also returns
    how many trials are already finished (counted up to `trials` per source)."""
    jobs, already = [], 0
    with _quiet_optuna():
        for spec, dataset_id in ids.items():
            name = study_name(dataset_id, sampler, prefix)
            study = optuna.create_study(storage=rdb, study_name=name, direction="maximize",
                                        load_if_exists=True)
            study.set_user_attr("dataset_id", dataset_id)
            study.set_user_attr("space", space.name)
            done = count_finished(study)
            already += min(done, trials)
            jobs.append(SourceJob(spec, dataset_id, name, _split(max(0, trials - done), workers)))
    return jobs, already


__all__ = ["SourceJob", "SweepJob", "TrialEvent", "cpu_count", "run_sweep", "run_worker"]
