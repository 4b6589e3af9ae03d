"""The run store: every `RunRecord` (our own runs and published results) in one table.

`RunStore(target)` opens a store by a file path or `sqlite:///path` (a SQLite file, the default:
`paths.store_url()`) or by a database URL (`postgresql://user:password@host/db`, through
SQLAlchemy). The backends live in `knowledge.runs.storages`, one per module; this facade validates,
decodes and applies the duplicate rule, so both behave the same: every write is one transaction
(all or nothing, safe against a killed process), concurrent writers lose and duplicate nothing, and
a `RunStore` can be shared by threads and processes (`RunStore(store.url)` reopens it anywhere).

    store = RunStore()                      # paths.store_url()
    store.add(record)                       # no-op if the same record is already there
    store.query(base_dataset="pneumoniamnist", status="ok")
    store.export("runs.parquet", source="own")
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from knowledge import paths
from knowledge.errors import ConfigError, StoreError
from knowledge.runs import io
from knowledge.runs.record import _GROUPS, RunRecord, error_column, record_to_row, row_to_record
from knowledge.runs.storages import Storage, open_storage
from knowledge.runs.storages.base import FILTERS, SUMMARY_COLUMNS
from knowledge.runs.storages.sqlite import BUSY_TIMEOUT_S, SCHEMA_VERSION  # noqa: F401 - re-exported
from knowledge.search_space import validate_config

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

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
    """A store of run records, by file path or database URL (default `paths.store_url()`).

    `url` reopens the same store (a SQLite file's absolute path, or the database URL: it may hold a
    password, never show it); `path` is the SQLite file (a `Path`), or for a database the URL with
    its password masked (for messages); `identity` names the store stably across reopening (the
    file's real path; the URL without password plus the store's uuid); `fingerprint()` changes
    whenever a record is added or replaced."""

    def __init__(self, target: str | Path | None = None) -> None:
        self._storage: Storage = open_storage(target if target is not None else paths.store_url())
        self.path: Path | str = self._storage.path

    @property
    def url(self) -> str:
        return self._storage.url

    @property
    def identity(self) -> str:
        return self._storage.identity

    def fingerprint(self) -> tuple[Any, ...]:
        """A cheap JSON-able value that changes whenever a record is added or replaced."""
        return self._storage.fingerprint()

    def __repr__(self) -> str:
        return f"RunStore({str(self._storage.display)!r})"

    def _connect(self) -> Any:
        """The SQLite backend's raw connection (tests, diagnostics)."""
        return self._storage._connect()  # type: ignore[attr-defined]

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

        def on_conflict(record: RunRecord, stored: str) -> bool:
            if self._decode(record.run_id, stored) == record:
                return False
            if not replace:
                raise StoreError(
                    f"run store {self.path}: run {record.run_id} is already stored with "
                    "different content (use replace to overwrite it)"
                )
            return True

        # rows are encoded inside the transaction, one by one (the crash tests rely on it)
        added = self._storage.add_rows(((r, _encode(r)) for r in batch), on_conflict)
        log.debug("added %d of %d records to %s", added, len(batch), self.path)
        return added

    # --- reading -----------------------------------------------------------------------------
    def get(self, run_id: str) -> RunRecord:
        """The record with this run_id; StoreError if there is none."""
        stored = self._storage.get_json(run_id)
        if stored is None:
            raise StoreError(f"run store {self.path}: no run {run_id!r}")
        return self._decode(run_id, stored)

    def __len__(self) -> int:
        return self.count()

    def __contains__(self, run_id: object) -> bool:
        return isinstance(run_id, str) and self._storage.contains(run_id)

    @staticmethod
    def _filters(filters: dict[str, str | None]) -> dict[str, str]:
        unknown = set(filters) - set(FILTERS)
        if unknown:
            raise TypeError(f"unknown filter(s) {sorted(unknown)}; known: {', '.join(FILTERS)}")
        return {k: v for k, v in filters.items() if v is not None}

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
        used = self._filters(dict(source=source, dataset_id=dataset_id,
                                  base_dataset=base_dataset, status=status, model=model))
        rows = self._storage.select(used, None if limit is None else int(limit))
        return [self._decode(run_id, text) for run_id, text in rows]

    def count(self, **filters: str | None) -> int:
        """How many records match the filters (same names as `query`, without `limit`)."""
        return self._storage.count(self._filters(filters))

    def summary(self, **filters: str | None) -> dict[str, Any]:
        """`{"total": n, "source": {...}, "status": {...}, "base_dataset": {...}, "model": {...}}`."""
        used = self._filters(filters)
        out: dict[str, Any] = {"total": self._storage.count(used)}
        for column in SUMMARY_COLUMNS:
            out[column] = self._storage.group_counts(column, used)
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
