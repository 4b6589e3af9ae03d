"""Optuna studies of a sweep: names, the resumable RDB storage, samplers and trial counting.

One study per (dataset, sampler), e.g. `metallmix:medmnist:breastmnist?n=200&seed=0:tpe`, in one
SQLite file (default `<home>/sweeps.sqlite`) or a database server (`postgresql://...`: sweeps on many
machines share it; see docs/MULTI_MACHINE.md). The storage records a heartbeat for each running trial;
a trial whose process died (crash, kill, power loss) stops beating, is marked FAIL once its heartbeat
is `grace_period` seconds old, and `RetryHeartbeatStaleTrialCallback` queues a copy with the same parameters,
which the next trial of any worker picks up first.

A trial is *finished* when it produced a run record that ended: COMPLETE (status ok) or FAIL with
a run status (failed, diverged, out-of-memory, timeout). Trials that were interrupted (Ctrl-C,
cancelled runs, stale trials from a dead process) are not finished: a resumed sweep does them again.

The trial count is enforced across processes: a trial is *taken* when it is finished or RUNNING, and
a sweep never lets a study have more than `trials` taken trials (`trials_taken`), whichever processes
or sessions run them. Each running trial records its owner process (`OWNER_ATTR`: host, node, pid,
start time); on resume, a RUNNING trial whose owner on this machine is gone is failed at once and
retried (`reap_dead_trials`), instead of counting as running until its heartbeat goes stale. A trial
owned by another machine (another host name, or the same name with another kernel boot or pid
namespace: containers) is never judged by its pid: only its heartbeat tells that it died.
"""

from __future__ import annotations

import copy
import os
import random
import socket
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import optuna
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from knowledge import paths
from knowledge.errors import ConfigError
from knowledge.runs.storages.base import mask_url

T = TypeVar("T")

SAMPLERS: tuple[str, ...] = ("random", "tpe")
FINISHED_STATUSES = frozenset({"ok", "failed", "diverged", "out-of-memory", "timeout"})
HEARTBEAT_INTERVAL_S = 30
MAX_RETRY = 2
SQLITE_TIMEOUT_S = 60
CONNECT_TIMEOUT_S = 10  # database servers: give up connecting after this long
RACE_RETRIES = 5  # machines that start at once on a new database race to create its tables
_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}  # as the run store


def study_name(dataset_id: str, sampler: str, prefix: str = "metallmix") -> str:
    """`<prefix>:<dataset id>:<sampler>`, e.g. `metallmix:digits:tpe`."""
    return f"{prefix}:{dataset_id}:{sampler}"


def default_storage_path() -> Path:
    """`<home>/sweeps.sqlite`."""
    return paths.home() / "sweeps.sqlite"


def storage_url(storage: str | Path | None = None) -> str:
    """A SQLAlchemy URL: given as is (`sqlite:///...`, `postgresql+psycopg://...`), or a SQLite file
    path. `postgresql://` and `postgres://` get the psycopg 3 driver (SQLAlchemy's default, psycopg2,
    is not a dependency), as the run store does."""
    if storage is None:
        storage = default_storage_path()
    text = str(storage)
    if "://" in text:
        scheme, rest = text.split("://", 1)
        return f"{_DRIVERS.get(scheme, scheme)}://{rest}"
    path = Path(text).expanduser().resolve()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"sweep storage {path}: cannot create its folder: {exc}") from None
    return f"sqlite:///{path}"


def engine_kwargs(url: str) -> dict[str, Any]:
    """SQLAlchemy engine options per database: SQLite waits up to `SQLITE_TIMEOUT_S` for a locked
    file; a server connection gives up after `CONNECT_TIMEOUT_S` and is checked before reuse (a
    server restart or an idle timeout does not fail the next trial)."""
    if url.startswith("sqlite"):
        return {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    if url.startswith(("postgresql", "mysql")):
        return {"pool_pre_ping": True, "connect_args": {"connect_timeout": CONNECT_TIMEOUT_S}}
    return {}


def open_storage(
    url: str, *, heartbeat_interval: int = HEARTBEAT_INTERVAL_S, grace_period: int | None = None
) -> RDBStorage:
    """The RDB storage with heartbeats and retries of trials whose process died.

    `grpc://host:port` (Optuna's gRPC storage proxy) is refused with a ConfigError: the proxy needs
    the `grpcio` package and does not carry the heartbeats this sweep relies on to retry the trials
    of dead machines; point every worker at the database URL instead (docs/MULTI_MACHINE.md)."""
    if url.startswith("grpc://"):
        raise ConfigError(
            f"sweep storage {url}: Optuna's gRPC storage proxy is not supported (no heartbeats, so "
            "a dead worker's trial would never be retried); give the database URL "
            "(postgresql+psycopg://...) to every worker")

    def build() -> RDBStorage:
        with warnings.catch_warnings():  # heartbeat options are flagged experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return RDBStorage(
                url,
                engine_kwargs=engine_kwargs(url),
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
            )

    from sqlalchemy.exc import IntegrityError, ProgrammingError

    try:  # processes opening a new database at once race to create Optuna's tables (duplicate
        # table, type or row: retried; a refused connection or a bad password is not)
        return build() if url.startswith("sqlite") else retry_races(
            build, (IntegrityError, ProgrammingError, optuna.exceptions.StorageInternalError))
    except Exception as exc:  # noqa: BLE001 - sqlalchemy/optuna errors: one line for the user
        raise ConfigError(mask_url(f"sweep storage {url}: cannot open: {exc}".splitlines()[0])) from None


def retry_races(call: Callable[[], T], errors: type[BaseException] | tuple[type[BaseException], ...] = (
        optuna.exceptions.StorageInternalError,), attempts: int = RACE_RETRIES) -> T:
    """`call()`, again after a short random pause when it raises one of `errors` (at most `attempts`
    times): Optuna's storage reads then inserts (tables, a study's attributes), so processes on
    several machines doing the same first step at once may collide on a unique key; the loser's
    second try finds the winner's row."""
    for attempt in range(1, attempts + 1):
        try:
            return call()
        except errors:
            if attempt == attempts:
                raise
            time.sleep(random.uniform(0.1, 0.5) * attempt)
    raise AssertionError("unreachable")


def sampler_seed(seed: int, worker: int, n_existing: int) -> int:
    """A sampler seed from (sweep seed, worker, number): a sweep's trial `n` draws with
    `sampler_seed(seed, 0, n)` (`make_sampler(..., per_trial=True)`)."""
    return int(np.random.SeedSequence([seed, worker, n_existing]).generate_state(1)[0])


class _TrialSeeded:
    """Sampler mixin: before each trial, the random state is reseeded from (sweep seed, trial number).
    Whichever process or machine runs trial `n` draws the same point, different from every other
    trial's: sweeps started at once on many machines with the same seed do not repeat each other's
    configs, a resumed sweep does not replay the first session's draws, a sweep is reproducible per
    seed, and fresh studies of different sources try the same configs at the same trial numbers (a
    paired design for the meta-learner)."""

    _sweep_seed: int
    _rng: Any

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        super().before_trial(study, trial)  # type: ignore[misc]
        seed = sampler_seed(self._sweep_seed, 0, trial.number)
        self._rng.rng.seed(seed)
        inner = getattr(self, "_random_sampler", None)  # TPE's warm-up draws
        if inner is not None:
            inner._rng.rng.seed(seed)


class _TrialSeededRandom(_TrialSeeded, optuna.samplers.RandomSampler):
    pass


class _TrialSeededTPE(_TrialSeeded, optuna.samplers.TPESampler):
    pass


def make_sampler(name: str, *, seed: int, warmup: int | None = None,
                 per_trial: bool = False) -> optuna.samplers.BaseSampler:
    """`random`: RandomSampler. `tpe`: multivariate, grouped TPE (the search space is conditional:
    `pretrained` only for models with pretrained weights) whose first `warmup` trials (default:
    Optuna's 10) are drawn at random - the paper's random search, then Bayesian optimisation.
    `per_trial`: reseeded from (`seed`, trial number) before each trial (see `_TrialSeeded`; what a
    sweep uses)."""
    if name == "random":
        if warmup is not None:
            raise ConfigError("--warmup only applies to the tpe sampler (random search has no warm-up)")
        sampler: Any = (_TrialSeededRandom if per_trial else optuna.samplers.RandomSampler)(seed=seed)
    elif name == "tpe":
        if warmup is not None and warmup < 0:
            raise ConfigError(f"--warmup {warmup}: must be 0 or more")
        kwargs = {} if warmup is None else {"n_startup_trials": warmup}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            sampler = (_TrialSeededTPE if per_trial else optuna.samplers.TPESampler)(
                seed=seed, multivariate=True, group=True, **kwargs
            )
    else:
        raise ConfigError(f"sampler {name!r}: unknown; allowed: {', '.join(SAMPLERS)}")
    if per_trial:
        sampler._sweep_seed = seed
    return sampler


def is_finished(trial: FrozenTrial) -> bool:
    """Did this trial produce a run that ended (see the module docstring)?"""
    if trial.state == TrialState.COMPLETE:
        return True
    return trial.state == TrialState.FAIL and trial.user_attrs.get("status") in FINISHED_STATUSES


def count_finished(study: optuna.Study) -> int:
    """Finished trials of a study."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.FAIL))
    return sum(is_finished(t) for t in trials)


def trials_taken(study: optuna.Study, *, before: int | None = None) -> int:
    """Trials that count against a sweep's `trials`: finished ones plus RUNNING ones (in any process;
    see `reap_dead_trials` for those of dead processes).

    `before`: only trials numbered below it (a trial's admission, `worker._Admission`), and then
    WAITING ones count too: a queued retry numbered below a new trial is popped (and admitted
    against the trials below *it*) by the next `ask` of whichever process queued it, so the new trial
    must leave it its place. Optuna numbers trials under a row lock on the study (SQLite and
    PostgreSQL alike), so every trial numbered below is visible when a trial is admitted."""
    states = (TrialState.COMPLETE, TrialState.FAIL, TrialState.RUNNING)
    if before is not None:
        states += (TrialState.WAITING,)
    return sum(
        1 for t in study.get_trials(deepcopy=False, states=states)
        if (before is None or t.number < before)
        and (t.state in (TrialState.RUNNING, TrialState.WAITING) or is_finished(t))
    )


class StopAtFinished:
    """Optuna callback: stop the study once it has `n` taken trials (finished or running, in any
    process; see `trials_taken`), so no process starts a trial beyond the sweep's count."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trials_taken(study) >= self.n:
            study.stop()


# --- the process running a trial ------------------------------------------------------------------
OWNER_ATTR = "metallmix:owner"  # a trial system attribute: the process that runs it


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """Linux: (state, '<boot id>:<start time in clock ticks>') of a process from /proc; None when it
    cannot be read (gone, hidden, not Linux). The start tells a reused pid from the old process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
    return fields[0], f"{boot}:{fields[19]}"  # fields 3 and 22 of /proc/<pid>/stat: state, starttime


def node_id() -> str | None:
    """Linux: '<boot id>/<pid namespace>': the pids this process can see. Two machines (or two
    containers) may share a host name, never this. None where it cannot be read."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{boot}/{namespace}"


def owner_tag(trial_number: int) -> dict[str, Any]:
    """What `OWNER_ATTR` records for a trial run by this process."""
    stat = _proc_stat(os.getpid())
    return {"host": socket.gethostname(), "node": node_id(), "pid": os.getpid(),
            "started": stat[1] if stat else None, "trial": trial_number}


def owner_alive(tag: object, trial_number: int) -> bool | None:
    """Whether the process that ran a trial (its `OWNER_ATTR`) is still running: True / False when
    that can be told (same host name and node: the same machine and pid namespace), None otherwise
    (another machine or container, no tag, a tag copied into a retry, Windows): then only the
    trial's heartbeat tells."""
    if not isinstance(tag, dict) or tag.get("trial") != trial_number:
        return None
    pid = tag.get("pid")
    if tag.get("host") != socket.gethostname() or not isinstance(pid, int) or sys.platform == "win32":
        return None
    if tag.get("node") is not None and tag["node"] != node_id():
        return None
    if pid == os.getpid():
        return True
    stat = _proc_stat(pid)
    if stat is not None:
        state, started = stat
        if state in ("Z", "X"):  # ended, not reaped yet
            return False
        return tag.get("started") is None or started == tag["started"]  # else: the pid was reused
    try:  # no /proc (or hidden): does the pid exist?
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, owned by another user
        return True
    return True


def reap_dead_trials(study: optuna.Study) -> list[int]:
    """Fail the RUNNING trials whose process is gone and queue a retry of each (with the same
    parameters, as for a trial whose heartbeat went stale). Same-host trials are recognised at once
    by their owner's pid; the others once their heartbeat is stale. Returns the failed trial
    numbers."""
    storage = study._storage
    failed: list[FrozenTrial] = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if owner_alive(trial.system_attrs.get(OWNER_ATTR), trial.number) is not False:
            continue
        try:
            if storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):
                failed.append(trial)
        except optuna.exceptions.UpdateFinishedTrialError:  # another process got there first
            pass
    retry = getattr(storage, "get_heartbeat_stale_trial_callback", lambda: None)()
    if retry is not None:
        for trial in failed:
            retry(study, copy.deepcopy(storage.get_trial(trial._trial_id)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    return [t.number for t in failed]
