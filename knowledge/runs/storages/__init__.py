"""Run-store backends (one per module, as Optuna's storages): `sqlite` (a file, the default) and `rdb`
(a database server through SQLAlchemy, PostgreSQL). `open_storage` picks one from a path or a URL."""

from __future__ import annotations

from pathlib import Path

from knowledge.runs.storages.base import Storage, is_url, mask_url

__all__ = ["Storage", "is_url", "mask_url", "open_storage"]


def open_storage(target: str | Path) -> Storage:
    """The backend for `target`: a file path or `sqlite:///path` (SQLite), or a database URL
    (`postgresql://...`, `postgresql+psycopg://...`); StoreError for any other URL."""
    if isinstance(target, str) and is_url(target):
        if target.lower().startswith("sqlite:"):
            from knowledge.runs.storages.sqlite import SQLiteStorage, sqlite_url_path

            return SQLiteStorage(sqlite_url_path(target))
        from knowledge.runs.storages.rdb import RDBStorage

        return RDBStorage(target)
    from knowledge.runs.storages.sqlite import SQLiteStorage

    return SQLiteStorage(Path(target).expanduser())
