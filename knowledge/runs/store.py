"""The run store: every `RunRecord` (our own runs and published results) in one SQLite file.

One table, `runs`: the full record as JSON plus indexed columns to filter on. The file is in WAL
mode, every write is one `BEGIN IMMEDIATE` transaction (all or nothing, safe against a killed
process), and concurrent writers wait for each other (busy timeout) instead of failing. Each call
opens its own short-lived connection, so a `RunStore` can be shared by threads and processes.

    store = RunStore()                      # paths.store_path()
    store.add(record)                       # no-op if the same record is already there
    store.query(base_dataset="pneumoniamnist", status="ok")
    store.export("runs.parquet", source="own")
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from knowledge import paths
from knowledge.errors import ConfigError, StoreError
from knowledge.runs import io
from knowledge.runs.record import _GROUPS, RunRecord, error_column, record_to_row, row_to_record
from knowledge.search_space import validate_config

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
BUSY_TIMEOUT_S = 60.0
FILTERS = ("source", "dataset_id", "base_dataset", "status", "model")

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
_INSERT = (
    "INSERT INTO runs (run_id, dataset_id, base_dataset, source, status, model, created_at, "
    "record_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(run_id) DO NOTHING"
)
_UPDATE = (
    "UPDATE runs SET dataset_id=?, base_dataset=?, source=?, status=?, model=?, created_at=?, "
    "record_json=? WHERE run_id=?"
)


def _encode(record: RunRecord) -> tuple[str, ...]:
    """The table row of a record: (run_id, indexed columns..., record_json)."""
    return (
        record.run_id,
        record.dataset_id,
        record.base_dataset,
        record.provenance.source,
        record.status,
        record.config.model,
        record.provenance.timestamp,
        record.model_dump_json(),
    )


def _column(loc: tuple[Any, ...]) -> str:
    """The flat column name (`cfg.lr`, `mf.n_classes`, `dataset_id`) of a validation error location;
    a whole group (a model validator of the meta-features, say) is its prefix (`mf`)."""
    if len(loc) >= 2 and loc[0] in _GROUPS:
        return f"{_GROUPS[loc[0]]}.{loc[1]}"
    if len(loc) == 1 and loc[0] in _GROUPS:
        return _GROUPS[loc[0]]
    return ".".join(map(str, loc)) or "?"


def describe_error(exc: ValidationError) -> str:
    """The first error of a record's ValidationError as `column: message` (`out.train_seconds: Input
    should be a finite number`)."""
    err = exc.errors()[0]
    column = error_column(err)
    if column is not None:
        return f"{column}: {err['ctx']['message']}"
    return f"{_column(tuple(err['loc']))}: {err['msg'].removeprefix('Value error, ')}"


def check_record(record: RunRecord) -> None:
    """StoreError unless the record passes the schema (again: a record's fields may have been changed
    after it was built) and its config lies in the full search space (`SPACE`)."""
    try:
        RunRecord.model_validate(record.model_dump())
    except ValidationError as exc:
        raise StoreError(f"run {record.run_id}: not a valid record: {describe_error(exc)}") from None
    try:
        validate_config(record.config)
    except ConfigError as exc:
        raise StoreError(f"run {record.run_id}: config outside the search space: {exc}") from None


class RunStore:
    """A SQLite file of run records (default `paths.store_path()`; parent folders are created)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path).expanduser() if path is not None else paths.store_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"run store {self.path}: cannot create its folder: {exc}") from None
        self._init_schema()

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r})"

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
            if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
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

    def _decode(self, run_id: str, record_json: str) -> RunRecord:
        try:
            return RunRecord.model_validate_json(record_json)
        except ValidationError as exc:
            raise StoreError(
                f"run store {self.path}: run {run_id} is not a valid record: {describe_error(exc)}"
            ) from None

    # --- writing -----------------------------------------------------------------------------
    def add(self, record: RunRecord, *, replace: bool = False) -> str:
        """Store one record and return its run_id.

        Adding a run_id that is already stored with identical content does nothing; with different
        content it raises StoreError, unless `replace=True`.
        """
        self.add_many([record], replace=replace)
        return record.run_id

    def add_many(self, records: Iterable[RunRecord], *, replace: bool = False) -> int:
        """Store many records in ONE transaction (all or nothing); returns how many were new."""
        batch = list(records)
        for record in batch:
            check_record(record)
        added = 0
        with self._write() as conn:
            for record in batch:
                row = _encode(record)
                if conn.execute(_INSERT, row).rowcount == 1:
                    added += 1
                    continue
                (stored,) = conn.execute(
                    "SELECT record_json FROM runs WHERE run_id = ?", (record.run_id,)
                ).fetchone()
                if self._decode(record.run_id, stored) == record:
                    continue
                if not replace:
                    raise StoreError(
                        f"run store {self.path}: run {record.run_id} is already stored with "
                        "different content (use replace to overwrite it)"
                    )
                conn.execute(_UPDATE, (*row[1:], record.run_id))
        log.debug("added %d of %d records to %s", added, len(batch), self.path)
        return added

    # --- reading -----------------------------------------------------------------------------
    def get(self, run_id: str) -> RunRecord:
        """The record with this run_id; StoreError if there is none."""
        with self._connect() as conn:
            row = conn.execute("SELECT record_json FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise StoreError(f"run store {self.path}: no run {run_id!r}")
        return self._decode(run_id, row[0])

    def __len__(self) -> int:
        return self.count()

    def __contains__(self, run_id: object) -> bool:
        with self._connect() as conn:
            return conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is not None

    @staticmethod
    def _where(filters: dict[str, str | None]) -> tuple[str, list[str]]:
        unknown = set(filters) - set(FILTERS)
        if unknown:
            raise TypeError(f"unknown filter(s) {sorted(unknown)}; known: {', '.join(FILTERS)}")
        used = {k: v for k, v in filters.items() if v is not None}
        clause = " AND ".join(f"{k} = ?" for k in used)
        return (f" WHERE {clause}" if clause else ""), list(used.values())

    def query(
        self,
        *,
        source: str | None = None,
        dataset_id: str | None = None,
        base_dataset: str | None = None,
        status: str | None = None,
        model: str | None = None,
        limit: int | None = None,
    ) -> list[RunRecord]:
        """Records matching every given filter, in insertion order (at most `limit`)."""
        where, args = self._where(dict(source=source, dataset_id=dataset_id,
                                       base_dataset=base_dataset, status=status, model=model))
        sql = f"SELECT run_id, record_json FROM runs{where} ORDER BY rowid"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        with self._connect() as conn:
            rows = conn.execute(sql, args).fetchall()
        return [self._decode(run_id, text) for run_id, text in rows]

    def count(self, **filters: str | None) -> int:
        """How many records match the filters (same names as `query`, without `limit`)."""
        where, args = self._where(filters)
        with self._connect() as conn:
            return conn.execute(f"SELECT COUNT(*) FROM runs{where}", args).fetchone()[0]

    def summary(self, **filters: str | None) -> dict[str, Any]:
        """`{"total": n, "source": {...}, "status": {...}, "base_dataset": {...}, "model": {...}}`."""
        where, args = self._where(filters)
        out: dict[str, Any] = {"total": 0}
        with self._connect() as conn:
            out["total"] = conn.execute(f"SELECT COUNT(*) FROM runs{where}", args).fetchone()[0]
            for column in ("source", "status", "base_dataset", "model"):
                rows = conn.execute(
                    f"SELECT {column}, COUNT(*) AS n FROM runs{where} "
                    f"GROUP BY {column} ORDER BY n DESC, {column}",
                    args,
                )
                out[column] = dict(rows.fetchall())
        return out

    def to_frame(self, **filters: Any) -> pd.DataFrame:
        """One row per matching record, with the flat columns of `record_to_row`."""
        import pandas as pd

        records = self.query(**filters)
        if not records:
            return pd.DataFrame(columns=_flat_columns())
        return pd.DataFrame([record_to_row(r) for r in records])

    # --- files -------------------------------------------------------------------------------
    def export(self, path: str | Path, *, format: str | None = None, **filters: Any) -> int:
        """Write matching records to CSV or Parquet (by suffix or `format`), atomically; rows written."""
        io.file_format(path, format)  # fail on a bad suffix before reading the store
        frame = self.to_frame(**filters)
        io.write_frame(frame, path, format=format)
        return len(frame)

    def import_file(self, path: str | Path, *, replace: bool = False) -> int:
        """Add every record of a CSV/Parquet file in one transaction; returns how many were new.

        Every row is validated first (the record schema: types, ranges, finite numbers, dates,
        consistency; and the search space); one bad row raises StoreError naming the file, the row
        (1-based, data rows), the column and the row's run_id, and then nothing is imported.
        """
        frame = io.read_frame(path)
        records: list[RunRecord] = []
        bad: list[str] = []
        for number, row in enumerate(frame.to_dict(orient="records"), start=1):
            run_id = row.get("run_id")
            where = f" (run_id {str(run_id)[:40]!r})" if isinstance(run_id, str) and run_id.strip() else ""
            try:
                record = row_to_record(row)
                validate_config(record.config)
            except ValidationError as exc:
                bad.append(f"row {number}: {describe_error(exc)}{where}")
            except ConfigError as exc:
                bad.append(f"row {number}: cfg.{exc}{where}")
            except (TypeError, ValueError) as exc:
                bad.append(f"row {number}: {exc}{where}")
            else:
                records.append(record)
        if bad:
            more = f" (and {len(bad) - 1} more bad rows)" if len(bad) > 1 else ""
            raise StoreError(f"{path}: {bad[0]}{more}; nothing was imported")
        try:
            added = self.add_many(records, replace=replace)
        except StoreError as exc:
            raise StoreError(f"{path}: {exc}; nothing was imported") from None
        log.info("imported %d new of %d records from %s", added, len(records), path)
        return added


def _flat_columns() -> list[str]:
    """The column names of `record_to_row`, in its order (for an empty frame)."""
    fields = RunRecord.model_fields
    columns = [name for name in fields if name not in _GROUPS]
    for group, prefix in _GROUPS.items():
        columns += [f"{prefix}.{sub}" for sub in fields[group].annotation.model_fields]
    return columns
