"""The run store behaves the same on both backends: a SQLite file and a real PostgreSQL server
(`pg_url`, tests/pg_server.py; the postgres cases skip where no server can start)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import traceback
import uuid
from pathlib import Path

import pytest

from knowledge.errors import StoreError
from knowledge.runs import store as store_mod
from knowledge.runs.record import RunRecord, record_to_row
from knowledge.runs.store import RunStore
from tests.knowledge.store_records import make_record, varied_records

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def pg_store_url(request: pytest.FixtureRequest) -> str:
    """A fresh empty database on the session's PostgreSQL server."""
    from tests.pg_server import fresh_database

    return fresh_database(request.getfixturevalue("pg_url"), f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where a new store goes: a SQLite file, or a URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "runs.sqlite")
    return request.getfixturevalue("pg_store_url")


# --- the same behaviour on both ----------------------------------------------------------------
def test_add_get_query_count_summary_frame(target):
    store = RunStore(target)
    records = varied_records()
    assert store.add_many(records) == 4
    assert len(store) == 4 and "own-1" in store and "nope" not in store
    assert [store.get(r.run_id) for r in records] == records
    assert store.query() == records  # insertion order
    assert [r.run_id for r in store.query(source="own")] == ["own-1", "own-2"]
    assert len(store.query(limit=3)) == 3
    assert store.count(base_dataset="pneumoniamnist", status="ok") == 1
    assert store.summary() == {
        "total": 4,
        "source": {"own": 2, "published": 2},
        "status": {"ok": 3, "failed": 1},
        "base_dataset": {"pneumoniamnist": 2, "bloodmnist": 1, "organamnist": 1},
        "model": {"resnet18": 2, "vgg16": 1, "vit_base_patch16_224.dino": 1},
    }
    frame = store.to_frame(source="published")
    assert len(frame) == 2 and list(frame.columns) == list(record_to_row(records[0]))
    assert store.to_frame(source="own", model="vgg16").empty
    with pytest.raises(StoreError, match="'ghost'"):
        store.get("ghost")
    with pytest.raises(TypeError, match="colour"):
        store.count(colour="red")


def test_duplicates_and_replace(target):
    store = RunStore(target)
    record = make_record("r1")
    assert store.add_many([record]) == 1
    assert store.add_many([make_record("r1")]) == 0  # identical content: nothing new
    changed = make_record("r1", status="timeout")
    with pytest.raises(StoreError, match="r1.*different content"):
        store.add(changed)
    assert store.get("r1") == record
    before = store.fingerprint()
    store.add(changed, replace=True)
    assert store.get("r1") == changed and len(store) == 1
    assert store.count(status="timeout") == 1  # the columns were updated too
    assert store.fingerprint() != before  # a replacement is a change


def test_a_batch_with_one_bad_record_adds_nothing(target):
    store = RunStore(target)
    store.add(make_record("r1"))
    batch = [make_record(f"new-{i}") for i in range(20)] + [make_record("r1", status="failed")]
    with pytest.raises(StoreError, match="r1"):
        store.add_many(batch)
    assert len(store) == 1
    assert store.add_many(batch, replace=True) == 20 and len(store) == 21


def test_export_import_round_trip(target, tmp_path):
    store = RunStore(target)
    store.add_many(varied_records())
    path = tmp_path / "runs.parquet"
    assert store.export(path) == 4
    other = RunStore(tmp_path / "other.sqlite")
    assert other.import_file(path) == 4 and other.query() == store.query()
    back = RunStore(target)
    assert back.import_file(path) == 0  # identical records: nothing new


def test_identity_is_stable_and_fingerprint_follows_adds(target):
    store = RunStore(target)
    again = RunStore(store.url)
    assert again.identity == store.identity and again.url == store.url
    first = store.fingerprint()
    assert again.fingerprint() == first
    store.add(make_record("r1"))
    second = again.fingerprint()
    assert second != first and store.fingerprint() == second
    store.add(make_record("r1"))  # nothing new: no change
    assert store.fingerprint() == second


# --- real processes ----------------------------------------------------------------------------
def _writer(url: str, worker: int, n: int, barrier, results) -> None:
    """Child: open the store with the others, add its own records one by one and a shared batch."""
    try:
        barrier.wait(60)
        store = RunStore(url)
        shared = 0
        for i in range(n):
            store.add(make_record(f"w{worker}-{i}"))
            if i == n // 2:
                shared = store.add_many(make_record(f"shared-{j}") for j in range(20))
        results.put((shared, None))
    except BaseException:  # noqa: BLE001 - report everything to the parent
        results.put((0, traceback.format_exc()))


def test_concurrent_writers_lose_and_duplicate_nothing(target):
    RunStore(target)  # the SQLite case also creates its file concurrently elsewhere (test_store)
    workers, n = 4, 50
    barrier, results = SPAWN.Barrier(workers), SPAWN.Queue()
    procs = [SPAWN.Process(target=_writer, args=(target, w, n, barrier, results)) for w in range(workers)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(30)
    errors = [err for _, err in outcomes if err]
    assert not errors, errors[0]
    assert sum(added for added, _ in outcomes) == 20  # each shared record added exactly once
    ids = [r.run_id for r in RunStore(target).query()]
    assert len(ids) == len(set(ids)) == workers * n + 20


def _killed_writer(url: str, n: int, stop_at: int, marker: str) -> None:
    """Child: add_many(n records) but freeze inside the transaction after `stop_at` rows."""
    calls = 0
    real_encode = store_mod._encode

    def encode(record: RunRecord) -> tuple[str, ...]:
        nonlocal calls
        calls += 1
        if calls == stop_at:
            Path(marker).touch()
            time.sleep(120)  # the parent SIGKILLs us here
        return real_encode(record)

    store_mod._encode = encode
    RunStore(url).add_many(make_record(f"batch-{i}") for i in range(n))


def test_sigkill_during_add_many_leaves_none_of_the_batch(target, tmp_path):
    committed = [make_record(f"before-{i}") for i in range(20)]
    RunStore(target).add_many(committed)
    marker = tmp_path / "inside-transaction"
    child = SPAWN.Process(target=_killed_writer, args=(target, 600, 500, str(marker)))
    child.start()
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.is_alive() and time.monotonic() < deadline, "child never reached the batch"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGKILL)
    child.join(30)
    assert child.exitcode == -signal.SIGKILL
    store = RunStore(target)
    deadline = time.monotonic() + 30  # the server notices the dead client, rolls back, unlocks
    while True:
        try:
            assert store.query() == committed  # none of the batch
            break
        except StoreError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
    assert store.add_many(make_record(f"batch-{i}") for i in range(600)) == 600  # still writable


def test_a_forked_child_opens_its_own_connection(pg_store_url):
    store = RunStore(pg_store_url)
    store.add(make_record("parent"))  # the pool now holds a connection
    pid = os.fork()
    if pid == 0:  # the child: must not use the parent's connection
        try:
            store.add(make_record("child"))
            os._exit(0)
        except BaseException:  # noqa: BLE001
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.count() == 2 and store.get("parent") == make_record("parent")


# --- PostgreSQL: URLs, passwords, errors -------------------------------------------------------
def test_postgres_url_identity_and_masked_password(pg_store_url):
    from sqlalchemy.engine import make_url

    password = make_url(pg_store_url).password
    assert password
    store = RunStore(pg_store_url)
    assert store.url == pg_store_url
    for shown in (repr(store), str(store.path), store.identity):
        assert password not in shown and "***" in shown
    assert store.identity.endswith(store.fingerprint()[0])  # URL without password + the store's uuid
    plain = pg_store_url.replace("postgresql+psycopg://", "postgresql://")
    assert RunStore(plain).identity == store.identity  # the default driver is psycopg 3
    with pytest.raises(StoreError) as bad:
        store.get("ghost")
    assert password not in str(bad.value) and "***" in str(bad.value)


def test_postgres_wrong_password_and_unreachable_server_are_clear(pg_store_url):
    from sqlalchemy.engine import make_url

    url = make_url(pg_store_url)
    wrong = url.set(password="not-the-secret-42").render_as_string(hide_password=False)
    with pytest.raises(StoreError, match="password authentication failed") as exc:
        RunStore(wrong)
    assert "not-the-secret-42" not in str(exc.value)
    from tests.helpers import free_port

    closed = url.set(port=free_port()).render_as_string(hide_password=False)
    with pytest.raises(StoreError, match="cannot reach the database server") as exc:
        RunStore(closed)
    assert url.password not in str(exc.value)


@pytest.mark.parametrize(("url", "message"), [
    ("postgresql://u:secret@localhost:notaport/db", "not a valid database URL"),
    ("mysql://u:secret@localhost/db", "unsupported database 'mysql'"),
    ("postgresql://u:secret@localhost", "names no database"),
    ("postgresql+psycopg2://u:secret@localhost/db", "driver 'postgresql\\+psycopg2' is not installed"),
    ("sqlite://", "needs a file path"),
])
def test_bad_urls_are_clear_store_errors(url, message):
    pytest.importorskip("sqlalchemy")
    if "psycopg2" in url:
        try:
            import psycopg2  # noqa: F401
            pytest.skip("psycopg2 is installed here")
        except ImportError:
            pass
    with pytest.raises(StoreError, match=message) as exc:
        RunStore(url)
    assert "secret" not in str(exc.value)


def test_sqlite_url_opens_the_file(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path).add(make_record("r1"))
    store = RunStore(f"sqlite:///{path}")
    assert store.path == path and store.url == str(path) and "r1" in store
    assert store.identity == RunStore(path).identity == os.path.realpath(path)


def test_metallmix_store_may_be_a_url(pg_store_url, monkeypatch):
    monkeypatch.setenv("METALLMIX_STORE", pg_store_url)
    store = RunStore()
    assert store.url == pg_store_url


# --- the advisor on a database store -------------------------------------------------------------
def test_advisor_keys_artifacts_by_identity_and_refreshes_on_change(pg_store_url, monkeypatch):
    from knowledge.metafeatures import from_traits
    from knowledge.metalearner import artifact
    from knowledge.recommend import Advisor, artifact_dirs, clear_cache, get_advisor, recommend
    from tests.knowledge.recommend_fixtures import ready_store, small_fits
    from tests.knowledge.synthetic_runs import synthetic_records

    monkeypatch.setenv("METALLMIX_EMBEDDINGS", "hashing")
    clear_cache()
    meta = from_traits(n_instances=1500, n_classes=3, height=128, modality="ct")
    store = ready_store(pg_store_url)
    learner_dir = artifact_dirs(store)[0]
    assert learner_dir == artifact_dirs(RunStore(store.url))[0] and "stores" in learner_dir.parts
    first = recommend(meta, store=store.url)
    assert first.learner["store"] == str(store.path) and "***" in first.learner["store"]
    advisor = get_advisor(store.url)
    assert get_advisor(store.url) is advisor
    learner, index = advisor.learner, advisor.index
    with monkeypatch.context() as patched:  # a new process: the stamp loads both, no refit
        patched.setattr(artifact, "load_or_fit", lambda *a, **k: pytest.fail("should load"))
        assert Advisor(store.url).learner.data_hash == learner.data_hash
    small_fits(monkeypatch)
    extra = synthetic_records(per_dataset=12, seed=1)[0]
    store.add(extra)
    assert advisor.index is not index and extra.run_id in {r.run_id for r in advisor.index.records}
    clear_cache()
