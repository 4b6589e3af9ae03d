"""Sweeps on a PostgreSQL server (the multi-machine setup): several sweep processes share one Optuna
study and one run store; a killed process's trial is failed and retried without a duplicate record;
the trial count holds; workers die with their parent. Trials are tiny (the fake backend of
sweep_fakes). The PostgreSQL cases skip where no server can start (`pg_url`, tests/pg_server.py);
the 'machines' test also runs on SQLite, for comparison."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from knowledge.errors import ConfigError
from knowledge.runs.store import RunStore
from knowledge.sweeps import run_sweep, study_name
from knowledge.sweeps.study import (
    OWNER_ATTR,
    count_finished,
    engine_kwargs,
    open_storage,
    owner_alive,
    owner_tag,
    reap_dead_trials,
    storage_url,
)
from tests.knowledge import sweep_fakes
from tests.knowledge.sweep_fakes import FAKE, OK_SPACE
from tests.knowledge.test_sweeps import _children, _gone, _wait_for

STUDY = study_name("fake:a", "random")


@pytest.fixture
def pg_db(pg_url: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database on the session's server, for this test."""
    from tests.pg_server import fresh_database

    name = "sw_" + "".join(c if c.isalnum() else "_" for c in request.node.name.lower())[:40]
    yield fresh_database(pg_url, name)


def _targets(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> tuple[str, str]:
    """(Optuna storage, run store) on SQLite files or on PostgreSQL (one database holds both:
    Optuna's tables and the store's `runs`/`store_meta` do not collide)."""
    if kind == "sqlite":
        return storage_url(tmp_path / "sweeps.sqlite"), str(tmp_path / "runs.sqlite")
    url = request.getfixturevalue("pg_db")
    return url, url


def _check_one_record_per_finished_trial(storage: optuna.storages.BaseStorage, store: str,
                                         trials: int) -> None:
    study = optuna.load_study(study_name=STUDY, storage=storage)
    finished = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    assert count_finished(study) == len(finished) == trials  # all finished, none beyond --trials
    assert not study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING))
    records = RunStore(store).query()
    assert sorted(r.run_id for r in records) == sorted(t.user_attrs["run_id"] for t in finished)
    assert len({r.provenance.study for r in records}) == len(records)  # one run per trial
    assert len({tuple(sorted(t.params.items())) for t in finished}) == trials  # none done twice


# --- four machines (processes), one of them killed mid-trial ----------------------------------------
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="SIGKILL / same-host reaping")
@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_four_processes_share_the_study_and_a_killed_ones_trial_is_retried(kind, tmp_path, request):
    storage_at, store = _targets(kind, tmp_path, request)
    trials = 12
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=sweep_fakes.slow_sweep, args=(storage_at, store, trials, 1, 0.6))
             for _ in range(4)]  # four `metallmix sweep` commands, as on four machines, started at once
    for proc in procs:
        proc.start()
    victim = procs[0]
    try:
        storage = None

        def victim_mid_trial() -> bool:
            nonlocal storage
            try:
                storage = storage or open_storage(storage_at)
                study = optuna.load_study(study_name=STUDY, storage=storage)
            except (ConfigError, KeyError):  # not created yet
                return False
            running = study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
            return any(t.system_attrs.get(OWNER_ATTR, {}).get("pid") == victim.pid for t in running)

        _wait_for(victim_mid_trial, 60, "the victim process to run a trial")
        os.kill(victim.pid, signal.SIGKILL)
        for proc in procs:
            proc.join(timeout=90)
        assert victim.exitcode == -signal.SIGKILL
        assert [p.exitcode for p in procs[1:]] == [0, 0, 0]
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
    assert storage is not None
    study = optuna.load_study(study_name=STUDY, storage=storage)
    # the dead process's trial still counts as running, so the others stopped at `trials` taken;
    # or a process that started after the kill saw its owner gone, failed and retried it at once
    left = len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))
    assert left <= 1
    assert count_finished(study) == trials - left
    assert RunStore(store).count() == trials - left

    report = run_sweep(["fake:a"], trials=trials, sampler="random", space=OK_SPACE,
                       storage=storage_at, store_path=store, progress=False, backend=FAKE)

    assert report.sources[0].finished == trials
    dead = [t for t in study.get_trials(deepcopy=False)
            if t.state == TrialState.FAIL and "skipped" not in t.user_attrs]
    assert len(dead) == 1 and dead[0].system_attrs[OWNER_ATTR]["pid"] == victim.pid
    _check_one_record_per_finished_trial(storage, store, trials)


# --- workers of one command (--workers) die with their parent -----------------------------------
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; prctl is Linux-only")
def test_postgres_workers_die_with_a_killed_parent_and_the_rerun_keeps_the_count(pg_db, tmp_path):
    url = pg_db
    parent = mp.get_context("spawn").Process(target=sweep_fakes.slow_sweep, args=(url, url, 4, 2, 300))
    parent.start()
    storage = None
    children: set[int] = set()

    def running() -> int:
        nonlocal storage
        try:
            storage = storage or open_storage(url)
            study = optuna.load_study(study_name=STUDY, storage=storage)
        except (ConfigError, KeyError):
            return 0
        return len(study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)))

    try:
        _wait_for(lambda: running() == 2, 60, "two workers training")
        children = _children(parent.pid)
        assert len(children) >= 2
        os.kill(parent.pid, signal.SIGKILL)
        parent.join(timeout=10)
        _wait_for(lambda: all(_gone(pid) for pid in children), 20, "the orphaned workers to exit")
    finally:
        if parent.is_alive():
            parent.kill()
        for pid in children:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
    assert running() == 0  # they stopped like Ctrl-C: their trials failed
    report = run_sweep(["fake:a"], trials=4, sampler="random", space=OK_SPACE, storage=url,
                       store_path=url, progress=False, workers=2, backend=FAKE)
    assert report.sources[0].finished == 4
    assert "***" in report.storage and url.split(":")[2].split("@")[0] not in report.storage
    _check_one_record_per_finished_trial(storage, url, 4)


# --- trials of other machines: only their heartbeat tells ----------------------------------------
@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")
def test_a_running_trial_of_another_machine_is_left_to_its_heartbeat(pg_db):
    storage = open_storage(pg_db, heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage, study_name="s", direction="maximize")
    dead_pid = 2 ** 22 + 7  # above pid_max's default: no such process here
    trials = [study.ask() for _ in range(3)]
    tags = [
        {**owner_tag(trials[0].number), "host": "gpu-node-7", "pid": dead_pid},  # another host
        {**owner_tag(trials[1].number), "node": "other-boot/pid:[1]", "pid": dead_pid},  # container
        {**owner_tag(trials[2].number), "pid": dead_pid},  # this machine, process gone
    ]
    for trial, tag in zip(trials, tags):
        storage.set_trial_system_attr(trial._trial_id, OWNER_ATTR, tag)
        storage.record_heartbeat(trial._trial_id)
    assert [owner_alive(tag, t.number) for tag, t in zip(tags, trials)] == [None, None, False]

    assert reap_dead_trials(study) == [trials[2].number]  # only this machine's dead process
    states = [study.trials[t.number].state for t in trials]
    assert states == [TrialState.RUNNING, TrialState.RUNNING, TrialState.FAIL]

    time.sleep(2.5)  # the other machines' trials stop beating: failed, and retried
    reap_dead_trials(study)
    study = optuna.load_study(study_name="s", storage=storage)
    assert [study.trials[t.number].state for t in trials] == [TrialState.FAIL] * 3
    retried = sorted(t.system_attrs["failed_trial"] for t in study.trials
                     if t.state == TrialState.WAITING)
    assert retried == [t.number for t in trials]


def test_a_retry_adopts_the_run_its_dead_trial_stored(pg_db, monkeypatch):
    """A worker killed after storing its run but before reporting the trial: the retry takes that
    run instead of training the config again (one record per finished trial)."""
    monkeypatch.setenv("FAKE_CRASH_AFTER_STORE_AT", "1")
    proc = mp.get_context("spawn").Process(target=sweep_fakes.crashing_sweep, args=(pg_db, pg_db, 3, -1))
    proc.start()
    proc.join(timeout=60)
    assert proc.exitcode == 3
    assert RunStore(pg_db).count() == 2  # trial 0's run and the dead trial 1's run
    monkeypatch.delenv("FAKE_CRASH_AFTER_STORE_AT")

    run_sweep(["fake:a"], trials=3, sampler="random", space=OK_SPACE, storage=pg_db, store_path=pg_db,
              progress=False, backend=FAKE)

    storage = open_storage(pg_db)
    study = optuna.load_study(study_name=STUDY, storage=storage)
    retry = next(t for t in study.trials if t.system_attrs.get("failed_trial") == 1)
    assert retry.state == TrialState.COMPLETE and retry.user_attrs["adopted"] == f"{STUDY}#1"
    _check_one_record_per_finished_trial(storage, pg_db, 3)


# --- storage URLs -------------------------------------------------------------------------------
def test_storage_urls_and_engine_options(pg_db):
    assert storage_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert storage_url("postgres://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert storage_url("postgresql+psycopg://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert "timeout" in engine_kwargs("sqlite:///x.db")["connect_args"]
    server = engine_kwargs(pg_db)
    assert "timeout" not in server["connect_args"] and server["pool_pre_ping"] is True
    assert open_storage(pg_db).engine.dialect.name == "postgresql"
    plain = pg_db.replace("postgresql+psycopg://", "postgresql://")
    assert open_storage(storage_url(plain)).engine.dialect.driver == "psycopg"
    with pytest.raises(ConfigError, match="gRPC"):
        open_storage("grpc://localhost:13000")
    bad = pg_db.rsplit("@", 1)[0].rsplit(":", 1)[0] + ":wrong-secret@" + pg_db.rsplit("@", 1)[1]
    with pytest.raises(ConfigError) as err:
        open_storage(bad)
    assert "wrong-secret" not in str(err.value)


def test_owner_tag_names_this_machine():
    tag = owner_tag(5)
    assert tag["host"] == socket.gethostname() and tag["pid"] == os.getpid()
    assert owner_alive(tag, 5) is True and owner_alive(tag, 6) is None  # a copy in a retry
    if sys.platform.startswith("linux"):
        assert tag["node"] and owner_alive({**tag, "node": "x"}, 5) is None


# --- the benchmark (eval/store_throughput.py) ------------------------------------------------------
def test_store_throughput_smoke_runs(pg_url, tmp_path):
    """`python -m eval.store_throughput --smoke` (its own throwaway server; skipped like the others
    where none can start) writes both reports with every configuration measured."""
    import json

    from eval import store_throughput

    out, md = tmp_path / "st.json", tmp_path / "st.md"
    assert store_throughput.main(["--smoke", "--no-progress", "--out", str(out),
                                  "--markdown", str(md)]) == 0
    result = json.loads(out.read_text())
    assert result["smoke"] and not result["skipped"]
    assert {(r["backend"], r["workers"]) for r in result["sweeps"]} == {
        (b, w) for b in ("sqlite", "postgres") for w in (1, 2)}
    assert all(r["trials"] == 5 and r["trials_per_hour"] > 0 for r in result["sweeps"])
    assert {(r["backend"], r["mode"]) for r in result["writes"]} == {
        (b, m) for b in ("sqlite", "postgres") for m in ("add", "add_many")}
    assert all(r["stored"] == r["records"] for r in result["writes"])
    assert result["machine"]["cpu_count"] and len(result["load_before"]) == 3
    assert "| postgres | 2 |" in md.read_text()
    assert "METALLMIX_BENCH_TRIAL_S" not in os.environ
