"""CSV / Parquet files of flat run rows (see `record_to_row`): atomic writes, checked reads.

The format comes from the file suffix (`.csv`, `.parquet`/`.pq`) unless given. CSV cells are read as
text and converted by the record schema, so text fields (ids, versions) keep their exact spelling.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from knowledge.errors import StoreError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

FORMATS = ("csv", "parquet")
_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def file_format(path: str | Path, format: str | None = None) -> str:
    """`csv` or `parquet`, from `format` or else the file suffix; StoreError otherwise."""
    if format is not None:
        fmt = format.strip().lower()
        if fmt not in FORMATS:
            raise StoreError(f"{path}: unknown format {format!r}; use one of {', '.join(FORMATS)}")
        return fmt
    fmt = _SUFFIXES.get(Path(path).suffix.lower())
    if fmt is None:
        raise StoreError(
            f"{path}: cannot tell the format from the suffix; use .csv or .parquet (or --format)"
        )
    return fmt


def write_frame(frame: pd.DataFrame, path: str | Path, *, format: str | None = None) -> None:
    """Write `frame` to `path` atomically: a temp file in the same folder, then `os.replace`.

    If writing fails midway, an existing file at `path` is left untouched and no temp file remains.
    """
    path = Path(path)
    fmt = file_format(path, format)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise StoreError(f"{path}: cannot write: {exc.strerror or exc}") from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            if fmt == "csv":
                frame.to_csv(handle, index=False)
            else:
                frame.to_parquet(handle, index=False)
            handle.flush()
            os.fsync(handle.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; a normal file's mode instead
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise StoreError(f"{path}: cannot write: {exc.strerror or exc}") from None
        raise
    log.info("wrote %d rows to %s", len(frame), path)


def read_frame(path: str | Path, *, format: str | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file of run rows; missing cells become None. StoreError if unreadable."""
    import pandas as pd

    path = Path(path)
    fmt = file_format(path, format)
    if not path.is_file():
        raise StoreError(f"{path}: no such file")
    try:
        if fmt == "csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        else:
            frame = pd.read_parquet(path)
    except pd.errors.EmptyDataError:
        raise StoreError(f"{path}: the file is empty (expected a header row)") from None
    except Exception as exc:  # noqa: BLE001 - pandas/pyarrow raise many types for bad files
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StoreError(f"{path}: not a readable {fmt} file: {first_line}") from None
    frame = frame.astype(object)
    return frame.where(frame.notna(), None)
