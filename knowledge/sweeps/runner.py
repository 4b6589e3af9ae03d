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
"""

from __future__ import annotations

import _thread
import ctypes
import functools
import logging
import multiprocessing as mp
import os
import queue as queue_mod
import signal
import sys
import threading
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
    OWNER_ATTR,
    SAMPLERS,
    StopAtFinished,
    count_finished,
    is_finished,
    make_sampler,
    open_storage,
    owner_tag,
    reap_dead_trials,
    sampler_seed,
    storage_url,
    study_name,
    trials_taken,
)

log = logging.getLogger(__name__)

ORPHAN_GRACE_S = 15.0  # a worker whose parent died exits at the latest this long after
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
    are finished or running (in any process). Trial numbers are handed out one at a time by the
    storage, so concurrent processes cannot both take the last place. The trial also records the
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
            n_existing = len(storage.get_all_trials(storage.get_study_id_from_name(src.study),
                                                    deepcopy=False))
            sampler = make_sampler(job.sampler, seed=sampler_seed(job.seed, worker, n_existing),
                                   warmup=job.warmup)
            study = optuna.load_study(study_name=src.study, storage=storage, sampler=sampler)
            if trials_taken(study) >= job.trials:  # other processes did this source's trials
                continue
            objective = Objective(dataset, job.space, job.backend, store=store, seed=job.seed,
                                  time_budget_s=job.trial_time_budget_s, num_threads=job.num_threads)
            study.optimize(_Admission(objective, job.trials), n_trials=src.quota[worker],
                           catch=(RunNotOk, _StudyFull),
                           callbacks=[StopAtFinished(job.trials), _Reporter(src.spec, sink)],
                           gc_after_trial=True)


def _die_with_parent() -> None:
    """In a spawned worker: end when the process that started it ends, even if it was killed.

    SIGTERM raises KeyboardInterrupt once (later ones are ignored), so the worker stops like Ctrl-C:
    the trainer stores its run as `cancelled` and the trial fails. Linux sends SIGTERM when the
    parent dies (`prctl(PR_SET_PDEATHSIG)`); on every platform a thread also waits for the parent's
    end and raises the same SIGTERM in the main thread, then exits hard `ORPHAN_GRACE_S` seconds
    later if the worker is still there (a long computation that does not return to Python)."""
    parent = mp.parent_process()
    if parent is None:
        return
    stopping = threading.Event()

    def on_sigterm(signum: int, frame: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(1, signal.SIGTERM, 0, 0, 0) != 0:  # 1 = PR_SET_PDEATHSIG
                log.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
        except (OSError, AttributeError) as exc:
            log.warning("prctl(PR_SET_PDEATHSIG) is not available: %s", exc)

    def watch() -> None:
        parent.join()  # returns when the parent has ended
        if not stopping.is_set():
            log.warning("sweep worker %d: the sweep process ended; stopping", os.getpid())
            _thread.interrupt_main(signal.SIGTERM)
        time.sleep(ORPHAN_GRACE_S)
        os._exit(1)

    # also covers a parent that died before prctl was set (prctl only covers later deaths)
    threading.Thread(target=watch, name="metallmix-parent-watch", daemon=True).start()


def _worker_main(job: SweepJob, worker: int, events: Any) -> None:
    """Entry point of a spawned worker: every outcome ends with a `_WorkerDone` on the queue."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        _die_with_parent()
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
    how many trials are already finished (counted up to `trials` per source).

    On resume, the RUNNING trials of processes that are gone are failed (and queued for a retry)
    first; the trials still running in other processes count as taken, so this sweep only runs the
    rest."""
    jobs, already = [], 0
    with _quiet_optuna():
        for spec, dataset_id in ids.items():
            name = study_name(dataset_id, sampler, prefix)
            study = optuna.create_study(storage=rdb, study_name=name, direction="maximize",
                                        load_if_exists=True)
            study.set_user_attr("dataset_id", dataset_id)
            study.set_user_attr("space", space.name)
            dead = reap_dead_trials(study)
            if dead:
                log.info("%s: trial(s) %s of a process that is gone failed; they are retried", name,
                         ", ".join(map(str, dead)))
            already += min(count_finished(study), trials)
            missing = max(0, trials - trials_taken(study))
            jobs.append(SourceJob(spec, dataset_id, name, _split(missing, workers)))
    return jobs, already


__all__ = ["SourceJob", "SweepJob", "TrialEvent", "cpu_count", "run_sweep", "run_worker"]
