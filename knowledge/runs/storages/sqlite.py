"""The SQLite backend: one file, the default run store.

The file is in WAL mode, every write is one `BEGIN IMMEDIATE` transaction (all or nothing, safe
against a killed process), and concurrent writers wait for each other (busy timeout) instead of
failing. Each call opens its own short-lived connection, so a store can be shared by threads and
processes. Besides `runs` (see `base`), a small table `store_meta` counts the write transactions
that changed something (`changes`) and names the file's content (`uuid`: a file replaced by
another one at the same path is another store), which makes `fingerprint` cheap; it is added to older files on
open, which older MetaLLMiX versions read as before.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from knowledge.errors import StoreError
from knowledge.runs.storages.base import FILTERS, Row, Storage

if TYPE_CHECKING:
    from knowledge.runs.record import RunRecord

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1  # PRAGMA user_version
BUSY_TIMEOUT_S = 60.0

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY,
        dataset_id TEXT NOT NULL,
        base_dataset TEXT NOT NULL,
        source TEXT NOT NULL,
        status TEXT NOT NULL,
        model TEXT NOT NULL,
        created_at TEXT NOT NULL,
        record_json TEXT NOT NULL
    )""",
    *(f"CREATE INDEX IF NOT EXISTS runs_{c} ON runs({c})" for c in FILTERS),
]
_META = [
    "CREATE TABLE IF NOT EXISTS store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "INSERT OR IGNORE INTO store_meta (key, value) VALUES ('changes', '0')",
    "INSERT OR IGNORE INTO store_meta (key, value) VALUES ('uuid', lower(hex(randomblob(16))))",
]
_INSERT = (
    "INSERT INTO runs (run_id, dataset_id, base_dataset, source, status, model, created_at, "
    "record_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id) DO NOTHING"
)
_UPDATE = (
    "UPDATE runs SET dataset_id=?, base_dataset=?, source=?, status=?, model=?, created_at=?, "
    "record_json=? WHERE run_id=?"
)
_BUMP = "UPDATE store_meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'changes'"


def sqlite_url_path(url: str) -> Path:
    """The file of a `sqlite:///abs/path.sqlite` URL (`sqlite:////abs/...` too)."""
    rest = unquote(url.split("://", 1)[1].split("?", 1)[0])
    if rest.startswith("//"):
        rest = rest[1:]
    if rest in ("", "/") or rest == "/:memory:":
        raise StoreError(f"run store {url}: a sqlite URL needs a file path (sqlite:///abs/path.sqlite)")
    return Path(rest).expanduser()


def _where(filters: dict[str, str]) -> tuple[str, list[str]]:
    clause = " AND ".join(f"{k} = ?" for k in filters)
    return (f" WHERE {clause}" if clause else ""), list(filters.values())


class SQLiteStorage(Storage):
    """A SQLite file of runs (parent folders are created)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.url = os.path.abspath(path)
        self.display = str(path)
        self.identity = os.path.realpath(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"run store {self.path}: cannot create its folder: {exc}") from None
        self._init_schema()

    # --- connections -------------------------------------------------------------------------
    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A fresh autocommit connection; any sqlite3 error becomes a one-line StoreError."""
        conn = None
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            yield conn
        except sqlite3.Error as exc:
            raise StoreError(self._explain(exc)) from None
        finally:
            if conn is not None:
                conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (`BEGIN IMMEDIATE`): committed on success, rolled back otherwise."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _explain(self, exc: sqlite3.Error) -> str:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return f"run store {self.path} is locked by another process ({text})"
        if isinstance(exc, sqlite3.DatabaseError) and ("not a database" in text or "malformed" in text):
            return f"run store {self.path} is not a SQLite database or is corrupt ({text})"
        return f"run store {self.path}: {text}"

    def _set_wal(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL. SQLite does not wait on the busy timeout for this, so retry ourselves."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _init_schema(self) -> None:
        with self._connect() as conn:
            self._set_wal(conn)
            if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION and conn.execute(
                    "SELECT 1 FROM sqlite_master WHERE type='table' AND name='store_meta'").fetchone():
                return
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"run store {self.path} has schema version {version}, newer than this "
                    f"MetaLLMiX understands ({SCHEMA_VERSION}); upgrade MetaLLMiX"
                )
            if version == 0:
                tables = [r[0] for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
                )]
                if tables:
                    raise StoreError(
                        f"{self.path} is a SQLite database but not a MetaLLMiX run store "
                        f"(tables: {', '.join(tables)})"
                    )
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                log.info("created run store %s", self.path)
            for statement in _META:
                conn.execute(statement)

    # --- the interface -----------------------------------------------------------------------
    def add_rows(self, items: Iterable[tuple[RunRecord, Row]],
                 on_conflict: Callable[[RunRecord, str], bool]) -> int:
        added = changed = 0
        with self._write() as conn:
            for record, row in items:
                if conn.execute(_INSERT, row).rowcount == 1:
                    added += 1
                    continue
                (stored,) = conn.execute(
                    "SELECT record_json FROM runs WHERE run_id = ?", (record.run_id,)
                ).fetchone()
                if on_conflict(record, stored):
                    conn.execute(_UPDATE, (*row[1:], record.run_id))
                    changed += 1
            if added or changed:
                conn.execute(_BUMP)
        return added

    def get_json(self, run_id: str) -> str | None:
        with self._connect() as conn:
            row = conn.execute("SELECT record_json FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else row[0]

    def contains(self, run_id: str) -> bool:
        with self._connect() as conn:
            return conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is not None

    def select(self, filters: dict[str, str], limit: int | None) -> list[tuple[str, str]]:
        where, args = _where(filters)
        sql = f"SELECT run_id, record_json FROM runs{where} ORDER BY rowid"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._connect() as conn:
            return conn.execute(sql, args).fetchall()

    def count(self, filters: dict[str, str]) -> int:
        where, args = _where(filters)
        with self._connect() as conn:
            return conn.execute(f"SELECT COUNT(*) FROM runs{where}", args).fetchone()[0]

    def group_counts(self, column: str, filters: dict[str, str]) -> dict[str, int]:
        where, args = _where(filters)
        with self._connect() as conn:
            return dict(conn.execute(
                f"SELECT {column}, COUNT(*) AS n FROM runs{where} GROUP BY {column} ORDER BY n DESC, {column}",
                args,
            ).fetchall())

    def fingerprint(self) -> tuple[Any, ...]:
        """(store uuid, runs, max rowid, write transactions that changed something)."""
        with self._connect() as conn:
            count, top = conn.execute("SELECT COUNT(*), MAX(rowid) FROM runs").fetchone()
            meta = dict(conn.execute("SELECT key, value FROM store_meta").fetchall())
        return (meta.get("uuid"), count, top, int(meta.get("changes", 0)))
