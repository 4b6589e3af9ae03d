"""The run store: API, errors, file round trips, and crash / concurrency safety with real processes."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import time
import traceback
from pathlib import Path

import pandas as pd
import pytest

from knowledge import paths
from knowledge.errors import StoreError
from knowledge.runs import io
from knowledge.runs import store as store_mod
from knowledge.runs.record import RunRecord, record_to_row
from knowledge.runs.store import RunStore
from knowledge.search_space import TrainConfig
from tests.knowledge.store_records import make_record, varied_records

SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return RunStore(tmp_path / "runs.sqlite")


# --- basic API -------------------------------------------------------------------------------
def test_default_path_is_paths_store_path_and_parent_is_created(monkeypatch, tmp_path):
    target = tmp_path / "deep" / "er" / "runs.sqlite"
    monkeypatch.setenv("METALLMIX_STORE", str(target))
    store = RunStore()
    assert store.path == paths.store_path() == target
    assert target.is_file()


def test_add_get_len_contains(store):
    records = varied_records()
    for record in records:
        assert store.add(record) == record.run_id
    assert len(store) == 4
    assert "own-1" in store and "nope" not in store
    for record in records:
        assert store.get(record.run_id) == record


def test_identical_add_is_noop_different_raises_unless_replace(store):
    record = make_record("r1")
    store.add(record)
    assert store.add_many([make_record("r1")]) == 0  # identical content: nothing new
    changed = make_record("r1", status="timeout")
    with pytest.raises(StoreError, match="r1.*different content"):
        store.add(changed)
    assert store.get("r1") == record
    store.add(changed, replace=True)
    assert store.get("r1") == changed
    assert len(store) == 1
    assert store.count(status="timeout") == 1 and store.count(status="ok") == 0  # columns updated


def test_add_many_is_all_or_nothing(store):
    store.add(make_record("r1"))
    batch = [make_record(f"new-{i}") for i in range(20)] + [make_record("r1", status="failed")]
    with pytest.raises(StoreError, match="r1"):
        store.add_many(batch)
    assert len(store) == 1
    assert store.add_many(batch, replace=True) == 20
    assert len(store) == 21


def test_add_rejects_config_outside_search_space(store):
    bad = make_record("r1", config=TrainConfig(model="not_a_model"))
    with pytest.raises(StoreError, match="r1.*model"):
        store.add(bad)
    assert len(store) == 0


def test_get_missing_run_names_it(store):
    with pytest.raises(StoreError, match="'ghost'"):
        store.get("ghost")


def test_query_count_summary_and_frame(store):
    store.add_many(varied_records())
    assert [r.run_id for r in store.query(source="own")] == ["own-1", "own-2"]
    assert store.count(source="published") == 2
    assert store.count(base_dataset="pneumoniamnist", status="ok") == 1
    assert [r.config.model for r in store.query(model="vgg16")] == ["vgg16"]
    assert len(store.query(dataset_id="medmnist:bloodmnist")) == 1
    assert len(store.query(limit=3)) == 3
    assert store.summary() == {
        "total": 4,
        "source": {"own": 2, "published": 2},
        "status": {"ok": 3, "failed": 1},
        "base_dataset": {"pneumoniamnist": 2, "bloodmnist": 1, "organamnist": 1},
        "model": {"resnet18": 2, "vgg16": 1, "vit_base_patch16_224.dino": 1},
    }
    frame = store.to_frame(source="published")
    assert len(frame) == 2
    assert list(frame.columns) == list(record_to_row(varied_records()[0]))
    assert frame["out.test_acc"].tolist() == [0.912, 0.912]
    empty = store.to_frame(source="own", model="vgg16")
    assert empty.empty and list(empty.columns) == list(frame.columns)
    with pytest.raises(TypeError, match="colour"):
        store.count(colour="red")


def test_sqlite_settings(store):
    store.add(make_record("r1"))
    conn = sqlite3.connect(store.path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store_mod.SCHEMA_VERSION
    indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"runs_source", "runs_dataset_id", "runs_base_dataset", "runs_status", "runs_model"} <= indexes
    conn.close()
    with store._connect() as conn:
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] >= 30_000


# --- bad store files -------------------------------------------------------------------------
def test_not_a_database_names_the_path(tmp_path):
    path = tmp_path / "runs.sqlite"
    path.write_bytes(b"this is a text file, not SQLite\n" * 200)
    with pytest.raises(StoreError, match="runs.sqlite.*not a SQLite database"):
        RunStore(path)


def test_truncated_database_names_the_path(tmp_path):
    path = tmp_path / "runs.sqlite"
    RunStore(path).add_many([make_record(f"r{i}") for i in range(300)])
    data = path.read_bytes()
    path.write_bytes(data[:100] + b"\xff" * 4000 + data[4100:])  # trash the schema page
    with pytest.raises(StoreError, match=str(path)):
        RunStore(path).query()


def test_foreign_sqlite_and_newer_schema_are_refused(tmp_path):
    foreign = tmp_path / "other.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE songs (title TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="other.db.*not a MetaLLMiX run store"):
        RunStore(foreign)
    newer = tmp_path / "newer.sqlite"
    RunStore(newer)
    conn = sqlite3.connect(newer)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError, match="newer.sqlite.*schema version 99"):
        RunStore(newer)


def test_invalid_stored_record_names_the_run(store):
    store.add(make_record("good"))
    store.add(make_record("bad"))
    conn = sqlite3.connect(store.path)
    conn.execute("UPDATE runs SET record_json = ? WHERE run_id = 'bad'",
                 (make_record("bad").model_dump_json().replace('"n_classes":2', '"n_classes":1'),))
    conn.commit()
    conn.close()
    assert store.get("good").run_id == "good"
    with pytest.raises(StoreError, match="run bad .*mf.n_classes"):
        store.get("bad")
    with pytest.raises(StoreError, match="run bad "):
        store.query()


# --- export / import -------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_import_round_trip(store, tmp_path, suffix):
    records = varied_records()
    store.add_many(records)
    path = tmp_path / "out" / f"runs{suffix}"
    assert store.export(path) == 4
    other = RunStore(tmp_path / "other.sqlite")
    assert other.import_file(path) == 4
    assert other.query() == records
    assert other.import_file(path) == 0  # re-import of identical records adds nothing
    assert store.export(path, source="published") == 2
    assert len(io.read_frame(path)) == 2


def test_export_format_option_and_bad_suffix(store, tmp_path):
    store.add(make_record("r1"))
    path = tmp_path / "runs.data"
    assert store.export(path, format="parquet") == 1
    assert pd.read_parquet(path)["run_id"].tolist() == ["r1"]
    with pytest.raises(StoreError, match=r"runs\.txt.*\.csv or \.parquet"):
        store.export(tmp_path / "runs.txt")
    with pytest.raises(StoreError, match="unknown format 'xlsx'"):
        store.export(path, format="xlsx")


@pytest.mark.parametrize("method", ["to_csv", "to_parquet"])
def test_interrupted_export_leaves_previous_file_untouched(store, tmp_path, monkeypatch, method):
    store.add_many(varied_records())
    path = tmp_path / ("runs.csv" if method == "to_csv" else "runs.parquet")
    store.export(path, source="own")
    before = path.read_bytes()
    store.add(make_record("later"))

    def broken(self, handle, **kwargs):
        handle.write(b"half a file")
        raise RuntimeError("disk pulled out midway")

    monkeypatch.setattr(pd.DataFrame, method, broken)
    with pytest.raises(RuntimeError, match="midway"):
        store.export(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp left


def _write_csv(path: Path, records: list[RunRecord]) -> pd.DataFrame:
    frame = pd.DataFrame([record_to_row(r) for r in records])
    frame.to_csv(path, index=False)
    return frame


def test_import_bad_row_names_file_row_and_field_and_imports_nothing(store, tmp_path):
    path = tmp_path / "mine.csv"
    frame = pd.DataFrame([record_to_row(make_record(f"r{i}")) for i in range(5)])
    frame["mf.n_classes"] = frame["mf.n_classes"].astype(object)
    frame.loc[2, "mf.n_classes"] = 1  # 3rd data row
    frame.to_csv(path, index=False)
    with pytest.raises(StoreError) as info:
        store.import_file(path)
    message = str(info.value)
    assert "mine.csv" in message and "row 3" in message and "mf.n_classes" in message
    assert "\n" not in message
    assert len(store) == 0


def test_import_reports_each_kind_of_bad_cell(store, tmp_path):
    base = pd.DataFrame([record_to_row(make_record(f"r{i}")) for i in range(2)]).astype(object)
    cases = {
        "cfg.lr": (5.0, "row 2: cfg.lr"),  # outside the search space
        "status": ("exploded", "row 2: status"),
        "prov.source": ("rumour", "row 2: prov.source"),
        "dataset_id": (None, "row 2: dataset_id"),  # missing required field
    }
    for column, (value, expected) in cases.items():
        frame = base.copy()
        frame.loc[1, column] = value
        path = tmp_path / f"bad-{column}.parquet"
        frame.to_parquet(path, index=False)
        with pytest.raises(StoreError, match=f"bad-{column}.parquet: {expected}"):
            store.import_file(path)
    extra = base.assign(**{"cfg.colour": "red"})
    extra.to_csv(tmp_path / "extra.csv", index=False)
    with pytest.raises(StoreError, match=r"extra.csv: row 1: cfg.colour.*\(and 1 more bad rows\)"):
        store.import_file(tmp_path / "extra.csv")
    assert len(store) == 0


def test_import_conflict_imports_nothing_unless_replace(store, tmp_path):
    store.add(make_record("r1"))
    path = tmp_path / "runs.csv"
    _write_csv(path, [make_record("r0"), make_record("r1", status="failed")])
    with pytest.raises(StoreError, match="runs.csv.*r1.*different content"):
        store.import_file(path)
    assert len(store) == 1
    assert store.import_file(path, replace=True) == 1
    assert store.get("r1").status == "failed"


def test_import_unreadable_files(store, tmp_path):
    with pytest.raises(StoreError, match="missing.csv: no such file"):
        store.import_file(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(StoreError, match="empty.csv: the file is empty"):
        store.import_file(tmp_path / "empty.csv")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(StoreError, match="junk.parquet: not a readable parquet file"):
        store.import_file(tmp_path / "junk.parquet")
    (tmp_path / "header.csv").write_text("run_id,dataset_id\n")
    assert store.import_file(tmp_path / "header.csv") == 0


# --- crash safety with real processes --------------------------------------------------------
def _killed_writer(path: str, n: int, stop_at: int, marker: str) -> None:
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
    RunStore(path).add_many(make_record(f"batch-{i}") for i in range(n))


def test_sigkill_during_add_many_keeps_all_or_nothing(tmp_path):
    path = tmp_path / "runs.sqlite"
    committed = [make_record(f"before-{i}") for i in range(50)]
    RunStore(path).add_many(committed)
    marker = tmp_path / "inside-transaction"
    child = SPAWN.Process(target=_killed_writer, args=(str(path), 4000, 3000, str(marker)))
    child.start()
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.is_alive() and time.monotonic() < deadline, "child never reached the batch"
        time.sleep(0.05)
    wal = Path(f"{path}-wal")
    assert wal.exists() and wal.stat().st_size > 0  # uncommitted pages really hit the disk
    os.kill(child.pid, signal.SIGKILL)
    child.join(30)
    assert child.exitcode == -signal.SIGKILL

    store = RunStore(path)
    assert len(store) == len(committed)  # none of the batch
    assert store.query() == committed
    with store._connect() as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert store.add_many(make_record(f"batch-{i}") for i in range(4000)) == 4000  # still writable


def _concurrent_writer(path: str, worker: int, n: int, barrier, results) -> None:
    """Child: open the (maybe new) store at the same time as the others, then write one by one."""
    try:
        barrier.wait(60)
        store = RunStore(path)
        added_shared = 0
        for i in range(n):
            store.add(make_record(f"w{worker}-{i}"))
            if i == n // 2:  # the overlapping batch: the same run_ids from every worker
                added_shared = store.add_many(make_record(f"shared-{j}") for j in range(50))
        results.put((worker, added_shared, None))
    except BaseException:  # noqa: BLE001 - report everything to the parent
        results.put((worker, 0, traceback.format_exc()))


def test_concurrent_writers_lose_nothing_and_duplicate_nothing(tmp_path):
    path = tmp_path / "fresh" / "runs.sqlite"  # created concurrently by the workers themselves
    workers, n = 3, 150
    barrier, results = SPAWN.Barrier(workers), SPAWN.Queue()
    procs = [SPAWN.Process(target=_concurrent_writer, args=(str(path), w, n, barrier, results))
             for w in range(workers)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=180) for _ in procs]
    for p in procs:
        p.join(30)
    errors = [err for _, _, err in outcomes if err]
    assert not errors, errors[0]
    assert sum(added for _, added, _ in outcomes) == 50  # each shared record added exactly once
    store = RunStore(path)
    assert len(store) == workers * n + 50
    ids = [r.run_id for r in store.query()]
    assert len(set(ids)) == len(ids)
    expected = {f"w{w}-{i}" for w in range(workers) for i in range(n)} | {f"shared-{j}" for j in range(50)}
    assert set(ids) == expected
