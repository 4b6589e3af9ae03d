"""The database-server backend: a run store in PostgreSQL, through SQLAlchemy 2 (driver psycopg 3).

    RunStore("postgresql://user:secret@db.example.org/metallmix")

Tables: `runs` (the rows of `base`, plus `seq`, the insertion order, and `changed`, a number from a
sequence set on every insert and replace) and `store_meta` (`schema_version`, and `uuid`, which names
the store in `identity`). Both are created on first open, under a transaction-level advisory lock so
that processes opening a new database at once do not race. Every write is one transaction that first
takes another advisory lock: writers queue as on SQLite, so they never deadlock, and `INSERT ... ON
CONFLICT (run_id) DO NOTHING` makes a run that several of them add land exactly once. A killed writer
leaves nothing: the server rolls back its open transaction. Passwords never appear in `display`,
`identity` or an error message.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from knowledge.errors import StoreError
from knowledge.runs.storages.base import FILTERS, Row, Storage, mask_url

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from knowledge.runs.record import RunRecord

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
CONNECT_TIMEOUT_S = 10
_SCHEMA_LOCK = 0x4D4C4C4D_0001  # pg_advisory_xact_lock keys: creating the schema, writing runs
_WRITE_LOCK = 0x4D4C4C4D_0002
_COLUMNS = ("run_id", "dataset_id", "base_dataset", "source", "status", "model", "created_at",
            "record_json")
_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


def _tables() -> tuple[Any, Any, Any]:
    """(runs, store_meta, the change sequence), built on first use (SQLAlchemy loads lazily)."""
    from sqlalchemy import BigInteger, Column, Identity, Index, MetaData, Sequence, Table, Text

    metadata = MetaData()
    changes = Sequence("runs_change_seq", metadata=metadata)
    runs = Table(
        "runs", metadata,
        Column("run_id", Text, primary_key=True),
        *(Column(name, Text, nullable=False) for name in _COLUMNS[1:]),
        Column("seq", BigInteger, Identity(), nullable=False, unique=True),
        Column("changed", BigInteger, server_default=changes.next_value(), nullable=False),
        *(Index(f"runs_{c}", c) for c in FILTERS),
    )
    meta = Table("store_meta", metadata, Column("key", Text, primary_key=True),
                 Column("value", Text, nullable=False))
    return runs, meta, changes


def _fork_safe(engine: Any) -> None:
    """Never hand a pooled connection of a parent process to a forked child (SQLAlchemy's recipe:
    the child opens its own)."""
    from sqlalchemy import event, exc

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, record: Any) -> None:
        record.info["pid"] = os.getpid()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if record.info["pid"] != os.getpid():
            record.dbapi_connection = proxy.dbapi_connection = None
            raise exc.DisconnectionError("connection belongs to the parent process")


class RDBStorage(Storage):
    """A run store in a PostgreSQL database, named by its SQLAlchemy URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.display = self.path = mask_url(url)
        try:
            from sqlalchemy import create_engine
            from sqlalchemy.engine import make_url
            from sqlalchemy.exc import ArgumentError, NoSuchModuleError
        except ImportError:  # pragma: no cover - SQLAlchemy is a dependency
            raise StoreError(f"run store {self.display}: SQLAlchemy is not installed") from None
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError):
            raise StoreError(f"run store {self.display}: not a valid database URL "
                             "(expected postgresql://user:password@host:port/database)") from None
        backend = parsed.get_backend_name()
        if backend not in ("postgresql", "postgres"):
            raise StoreError(f"run store {self.display}: unsupported database {backend!r} "
                             "(a run store is a file path, sqlite:///path or postgresql://...)")
        if not parsed.database:
            raise StoreError(f"run store {self.display}: the URL names no database "
                             "(postgresql://user:password@host:port/database)")
        parsed = parsed.set(drivername=_DRIVERS.get(parsed.drivername, parsed.drivername))
        self._password = parsed.password or ""
        try:
            self._engine = create_engine(parsed, pool_pre_ping=True,
                                         connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
        except (ImportError, NoSuchModuleError) as exc:
            raise StoreError(f"run store {self.display}: the database driver {parsed.drivername!r} "
                             f"is not installed ({exc}); pip install 'psycopg[binary]'") from None
        _fork_safe(self._engine)
        self._runs, self._meta, self._changes = _tables()
        self.uuid = self._init_schema()
        self.identity = f"{parsed.render_as_string(hide_password=True)}#{self.uuid}"

    def __del__(self) -> None:
        engine = getattr(self, "_engine", None)
        if engine is not None:
            try:
                engine.dispose()
            except Exception:  # noqa: BLE001 - at interpreter exit the driver may be gone
                pass

    # --- connections -------------------------------------------------------------------------
    def _explain(self, exc: BaseException) -> str:
        from sqlalchemy.exc import OperationalError

        orig = getattr(exc, "orig", None) or exc
        text = " ".join(str(orig).split()) or type(orig).__name__
        if self._password:
            text = text.replace(self._password, "***")
        if isinstance(exc, OperationalError) and ("connect" in text or "timeout" in text):
            return f"run store {self.display}: cannot reach the database server ({text})"
        return f"run store {self.display}: {text}"

    @contextmanager
    def _connect(self, *, write: bool = False) -> Iterator[Connection]:
        """A connection in one transaction (committed at the end, rolled back on an error); with
        `write`, holding the write lock. Any database error becomes a one-line StoreError."""
        from sqlalchemy import text
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self._engine.begin() as conn:
                if write:
                    conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _WRITE_LOCK})
                yield conn
        except SQLAlchemyError as exc:
            raise StoreError(self._explain(exc)) from None

    def _init_schema(self) -> str:
        """Create the tables if the database has none; the store's uuid."""
        from sqlalchemy import inspect, select, text
        from sqlalchemy.dialects.postgresql import insert

        with self._connect() as conn:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _SCHEMA_LOCK})
            tables = set(inspect(conn).get_table_names())
            if "store_meta" not in tables:
                if tables & {"runs"}:
                    raise StoreError(f"run store {self.display}: the database has a table 'runs' but "
                                     "is not a MetaLLMiX run store (no table store_meta)")
                self._runs.metadata.create_all(conn)
                log.info("created run store %s", self.display)
            conn.execute(insert(self._meta).values([
                {"key": "schema_version", "value": str(SCHEMA_VERSION)},
                {"key": "uuid", "value": uuid.uuid4().hex},
            ]).on_conflict_do_nothing(index_elements=["key"]))
            meta = dict(conn.execute(select(self._meta.c.key, self._meta.c.value)).all())
        version = int(meta["schema_version"])
        if version > SCHEMA_VERSION:
            raise StoreError(f"run store {self.display} has schema version {version}, newer than "
                             f"this MetaLLMiX understands ({SCHEMA_VERSION}); upgrade MetaLLMiX")
        return meta["uuid"]

    def _where(self, statement: Any, filters: dict[str, str]) -> Any:
        return statement.where(*(self._runs.c[k] == v for k, v in filters.items()))

    # --- the interface -----------------------------------------------------------------------
    def add_rows(self, items: Iterable[tuple[RunRecord, Row]],
                 on_conflict: Callable[[RunRecord, str], bool]) -> int:
        from sqlalchemy import select, update
        from sqlalchemy.dialects.postgresql import insert

        runs = self._runs
        added = 0
        with self._connect(write=True) as conn:
            for record, row in items:
                values = dict(zip(_COLUMNS, row))
                inserted = conn.execute(insert(runs).values(**values).on_conflict_do_nothing(
                    index_elements=["run_id"]).returning(runs.c.run_id)).first()
                if inserted is not None:
                    added += 1
                    continue
                stored = conn.execute(
                    select(runs.c.record_json).where(runs.c.run_id == record.run_id)).scalar_one()
                if on_conflict(record, stored):
                    values.pop("run_id")
                    conn.execute(update(runs).where(runs.c.run_id == record.run_id)
                                 .values(**values, changed=self._changes.next_value()))
        return added

    def get_json(self, run_id: str) -> str | None:
        from sqlalchemy import select

        with self._connect() as conn:
            return conn.execute(select(self._runs.c.record_json)
                                .where(self._runs.c.run_id == run_id)).scalar_one_or_none()

    def contains(self, run_id: str) -> bool:
        return self.get_json(run_id) is not None

    def select(self, filters: dict[str, str], limit: int | None) -> list[tuple[str, str]]:
        from sqlalchemy import select

        runs = self._runs
        statement = self._where(select(runs.c.run_id, runs.c.record_json), filters).order_by(runs.c.seq)
        if limit is not None:
            statement = statement.limit(int(limit))
        with self._connect() as conn:
            return [tuple(row) for row in conn.execute(statement).all()]

    def count(self, filters: dict[str, str]) -> int:
        from sqlalchemy import func, select

        with self._connect() as conn:
            return conn.execute(self._where(select(func.count()).select_from(self._runs), filters)).scalar_one()

    def group_counts(self, column: str, filters: dict[str, str]) -> dict[str, int]:
        from sqlalchemy import desc, func, select

        col = self._runs.c[column]
        n = func.count().label("n")
        statement = self._where(select(col, n), filters).group_by(col).order_by(desc(n), col.collate("C"))
        with self._connect() as conn:
            return dict(conn.execute(statement).all())

    def fingerprint(self) -> tuple[Any, ...]:
        """(store uuid, runs, sum of `changed`): an add or a replace raises the sum."""
        from sqlalchemy import func, select

        runs = self._runs
        with self._connect() as conn:
            count, total = conn.execute(
                select(func.count(), func.coalesce(func.sum(runs.c.changed), 0))).one()
        return (self.uuid, int(count), int(total))
