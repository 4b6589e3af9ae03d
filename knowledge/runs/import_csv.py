"""A CSV of the user's own runs (format: docs/RUN_IMPORT.md), and `import_path`, which tells it
from a `runs export` file (imported as before, by `RunStore.import_file`).

    added, kind = import_path(store, "my_runs.csv")       # kind: "user" or "export"

Strict: one bad cell is one error naming the row and the column, and nothing is imported; a file
over `MAX_IMPORT_BYTES` is refused before it is read; the path is resolved (links followed) and
must be a regular file.
"""

from __future__ import annotations

import csv
import io as _io
import math
import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from knowledge.errors import DatasetError, StoreError
from knowledge.metafeatures import short_repr
from knowledge.runs import io
from knowledge.runs.imports import FIELDS, RunImportError, _medical, coerce, space_error
from knowledge.runs.record import RUN_STATUSES, Outcome, Provenance, RunRecord
from knowledge.runs.store import RunStore, describe_error
from knowledge.search_space import SPACE, TrainConfig

MAX_IMPORT_BYTES = 50 * 1024 * 1024  # a user CSV larger than this is refused before it is read
MAX_HEADER_BYTES = 1024 * 1024

REQUIRED_COLUMNS = ("dataset", "n_images", "n_classes", "image_size", "model", "lr", "epochs",
                    "batch_size", "accuracy")
OPTIONAL_COLUMNS = ("run_id", "status", "image_width", "channels", "modality", "imbalance_ratio",
                    "task", "medical", "pretrained", "scheme", "resolution", "optimizer",
                    "weight_decay", "augmentation", "label_smoothing", "val_accuracy", "test_f1",
                    "test_auc", "train_seconds", "device", "seed", "timestamp", "study", "threads")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
_TRAIT_COLUMNS = {"n_images": "n_instances", "n_classes": "n_classes", "image_size": "height",
                  "image_width": "width", "channels": "channels", "modality": "modality",
                  "imbalance_ratio": "imbalance_ratio", "task": "task"}
_TRAIT_WORDS = {"n_instances": "n_images", "height": "image_size", "width": "image_width"}
_INT_TRAITS = ("n_images", "n_classes", "image_size", "image_width", "channels")
_RECORD_COLUMNS = {"out.test_acc": "accuracy", "out.val_acc": "accuracy", "out.test_f1": "test_f1",
                   "out.test_auc": "test_auc", "out.train_seconds": "train_seconds",
                   "prov.timestamp": "timestamp", "prov.seed": "seed", "prov.device": "device",
                   "prov.study": "study", "prov.threads": "threads"}


def _open_checked(path: str | Path, limit: int | None) -> tuple[Path, bytes]:
    """(the resolved path, its bytes). The path is resolved first (links followed; the target is
    opened without following another link, and read through that one descriptor), must be a
    regular file and, with `limit`, no larger than `limit` bytes (refused before reading);
    `limit=None` reads only the first `MAX_HEADER_BYTES` (the header)."""
    given = Path(path).expanduser()
    try:
        resolved = given.resolve(strict=True)
    except (OSError, RuntimeError):
        raise RunImportError(f"{given}: no such file") from None
    shown = str(given) if resolved == given.absolute() else f"{given} (-> {resolved})"
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(resolved, flags)
    except OSError as exc:
        raise RunImportError(f"{shown}: cannot open: {exc.strerror or exc}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise RunImportError(f"{shown}: not a regular file")
    with os.fdopen(fd, "rb") as handle:
        if limit is None:
            return resolved, handle.read(MAX_HEADER_BYTES)
        if info.st_size > limit:
            raise RunImportError(f"{shown}: {info.st_size / 2**20:.1f} MB; a CSV of runs may hold at "
                                 f"most {limit / 2**20:.0f} MB (split it)")
        data = handle.read(limit + 1)
    if len(data) > limit:  # grew while read
        raise RunImportError(f"{shown}: larger than {limit / 2**20:.0f} MB; split it")
    return resolved, data


def _decode(data: bytes, shown: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RunImportError(f"{shown}: not UTF-8 text (byte {exc.start})") from None


def csv_header(path: str | Path) -> list[str]:
    """The column names of a CSV file (its first line), read without reading the rest."""
    _, data = _open_checked(path, None)
    first = _decode(data, str(path)).splitlines()[:1]
    return [c.strip() for c in next(csv.reader(first), [])] if first else []


def is_user_csv(header: Sequence[str]) -> bool:
    """A user CSV (docs/RUN_IMPORT.md), as opposed to a `runs export` file (run_id, cfg.* ...)."""
    return not any(c.startswith(("cfg.", "mf.", "out.", "prov.")) for c in header)


def _number(text: str, *, integer: bool = False) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{short_repr(text)} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{short_repr(text)} is not a finite number")
    if integer:
        if value != int(value):
            raise ValueError(f"{short_repr(text)} is not a whole number")
        return int(value)
    return value


def _fraction(text: str) -> float:
    value = float(_number(text))
    if not 0.0 <= value <= 1.0:
        hint = " (a percentage? write 0.912, not 91.2)" if 1.0 < value <= 100.0 else ""
        raise ValueError(f"{short_repr(text)} is not a fraction in [0, 1]{hint}")
    return value


class _RowError(Exception):
    def __init__(self, column: str | None, message: str) -> None:
        super().__init__(message)
        self.column, self.message = column, message


def _threads(text: str) -> int:
    value = int(_number(text, integer=True))
    if not 1 <= value <= 1024:
        raise ValueError(f"{value} is no thread count (1 to 1024)")
    return value


def _cell_value(cells: Mapping[str, str], column: str, parse: Any) -> Any:
    text = cells.get(column, "")
    if text == "":
        return None
    try:
        return parse(text)
    except ValueError as exc:
        raise _RowError(column, str(exc)) from None


def _row_record(cells: dict[str, str], value_is: str, occurrence: int) -> tuple[RunRecord, tuple]:
    """One CSV row as a record, and its dataset's traits (to check rows of one dataset agree)."""
    from knowledge.recommend.traits import meta_from_traits  # lazy: loads the meta-learner stack

    for column in REQUIRED_COLUMNS:
        if column != "accuracy" and cells.get(column, "") == "":
            raise _RowError(column, "is empty (a required column)")
    name = cells["dataset"]
    if len(name) > 100 or any(ch in name for ch in "\r\n\t"):
        raise _RowError("dataset", f"{short_repr(name)}: give 1-100 characters on one line")
    traits: dict[str, Any] = {}
    for column, key in _TRAIT_COLUMNS.items():
        if column in _INT_TRAITS:
            value = _cell_value(cells, column, lambda t: _number(t, integer=True))
        elif column == "imbalance_ratio":
            value = _cell_value(cells, column, _number)
        else:
            value = cells.get(column) or None
        if value is not None:
            traits[key] = value
    traits.setdefault("width", traits["height"])
    try:
        meta = meta_from_traits(traits)
    except DatasetError as exc:  # in the CSV's words: n_images, not n_instances
        message = re.sub(r"\b(n_instances|height|width)\b", lambda m: _TRAIT_WORDS[m.group(1)],
                         str(exc).removeprefix("traits: "))
        first = re.match(r"[a-z_]+", message)
        column = first.group(0) if first and first.group(0) in _TRAIT_COLUMNS else None
        if column and message.startswith(f"{column}:"):
            message = message[len(column) + 1:].strip()
        raise _RowError(column, message) from None

    values: dict[str, Any] = {}
    for f in FIELDS:
        text = cells.get(f, "")
        if text == "":
            continue
        try:
            values[f] = coerce(f, text)
        except ValueError as exc:
            raise _RowError(f, str(exc)) from None
    if "resolution" not in values:
        size = traits["height"]
        if not SPACE.params["resolution"].check(size):
            raise _RowError("resolution", f"empty, and image_size {size} is no allowed training "
                                          f"resolution ({SPACE.params['resolution'].allowed()}): "
                                          f"add a resolution column")
        values["resolution"] = size
    for f, value in values.items():
        problem = space_error(f, value)
        if problem:
            raise _RowError(f, problem)
    config = TrainConfig(**values)

    status = cells.get("status", "") or "ok"
    if status not in RUN_STATUSES:
        raise _RowError("status", f"{short_repr(status)}; use one of {', '.join(RUN_STATUSES)}")
    accuracy = _cell_value(cells, "accuracy", _fraction)
    if status == "ok" and accuracy is None:
        raise _RowError("accuracy", "is empty, and a run with status 'ok' needs one")
    val = _cell_value(cells, "val_accuracy", _fraction)
    if val is not None and value_is == "val_acc":
        raise _RowError("val_accuracy", "with --value-is val_acc the accuracy column is the "
                                        "validation accuracy already")
    outcome = {value_is: accuracy, "val_acc": val} if value_is == "test_acc" else {"val_acc": accuracy}
    outcome |= {k: _cell_value(cells, k, _fraction) for k in ("test_f1", "test_auc")}
    seconds = _cell_value(cells, "train_seconds", _number)
    device = cells.get("device") or None
    if seconds is not None and device is None:
        raise _RowError("train_seconds", "needs the device column ('cpu', 'NVIDIA T4', ...): "
                                         "times without a device would count as CPU times")
    outcome["train_seconds"] = seconds
    medical = _cell_value(cells, "medical", lambda t: coerce("pretrained", t))
    seed = _cell_value(cells, "seed", lambda t: _number(t, integer=True))
    threads = _cell_value(cells, "threads", _threads)  # the CPU threads the run used
    run_id = cells.get("run_id") or RunRecord.stable_id(
        "user-csv", *sorted(cells.items()), value_is, occurrence)
    try:
        record = RunRecord(
            run_id=run_id, dataset_id=f"user:{name}", base_dataset=name,
            medical=_medical(meta.modality) if medical is None else medical, meta_features=meta,
            config=config, outcome=Outcome(**{k: v for k, v in outcome.items() if v is not None}),
            status=status, error=None if status == "ok" else f"{status} (imported)",
            provenance=Provenance(source="user", seed=seed, device=device, threads=threads,
                                  study=cells.get("study") or None,
                                  **({"timestamp": cells["timestamp"]} if cells.get("timestamp") else {})),
        )
    except ValidationError as exc:
        text = describe_error(exc)
        flat, _, message = text.partition(": ")
        raise _RowError(_RECORD_COLUMNS.get(flat), message if flat in _RECORD_COLUMNS else text) from None
    return record, tuple(sorted(traits.items()))


def user_csv_records(path: str | Path, *, value_is: str = "test_acc",
                     limit: int = MAX_IMPORT_BYTES) -> list[RunRecord]:
    """The records of a user CSV; RunImportError naming the row and the column of the first bad
    cell (rows count from 1, the header not included), and how many more rows are bad."""
    return [record for record, _ in _user_csv(path, value_is=value_is, limit=limit)]


def _user_csv(path: str | Path, *, value_is: str, limit: int) -> list[tuple[RunRecord, bool]]:
    """`user_csv_records`, each record with whether its row stated a timestamp."""
    if value_is not in ("test_acc", "val_acc"):
        raise RunImportError(f"--value-is {value_is}: a CSV's accuracy column is test_acc or val_acc")
    resolved, data = _open_checked(path, limit)
    shown = str(path)
    rows = list(csv.reader(_io.StringIO(_decode(data, shown), newline="")))
    if not rows:
        raise RunImportError(f"{shown}: the file is empty (expected a header row)")
    header = [c.strip() for c in rows[0]]
    unknown = [c for c in header if c not in COLUMNS]
    if unknown:
        raise RunImportError(f"{shown}: unknown column {short_repr(unknown[0])}; columns: "
                             f"{', '.join(REQUIRED_COLUMNS)} (required), {', '.join(OPTIONAL_COLUMNS)}")
    twice = sorted({c for c in header if header.count(c) > 1})
    if twice:
        raise RunImportError(f"{shown}: column {twice[0]!r} appears twice")
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise RunImportError(f"{shown}: missing required column(s) {', '.join(missing)}")
    records: list[tuple[RunRecord, bool]] = []
    bad: list[str] = []
    datasets: dict[str, tuple[tuple, int]] = {}
    seen: dict[tuple, int] = {}
    number = 0
    for cells_list in rows[1:]:
        if not any(c.strip() for c in cells_list):
            continue  # a blank line
        number += 1
        if len(cells_list) != len(header):
            bad.append(f"row {number}: {len(cells_list)} cells, the header has {len(header)}")
            continue
        cells = {c: v.strip() for c, v in zip(header, cells_list)}
        key = tuple(sorted(cells.items()))
        seen[key] = seen.get(key, 0) + 1
        try:
            record, traits = _row_record(cells, value_is, seen[key])
        except _RowError as exc:
            where = f", column {exc.column}" if exc.column else ""
            bad.append(f"row {number}{where}: {exc.message}")
            continue
        first = datasets.setdefault(record.base_dataset, (traits, number))
        if first[0] != traits:
            bad.append(f"row {number}: dataset {record.base_dataset!r} has other traits here than in "
                       f"row {first[1]} (n_images, n_classes, image size, ... must agree)")
            continue
        records.append((record, bool(cells.get("timestamp"))))
    if bad:
        more = f" (and {len(bad) - 1} more bad rows)" if len(bad) > 1 else ""
        raise RunImportError(f"{shown}: {bad[0]}{more}; nothing was imported")
    if not records:
        raise RunImportError(f"{shown}: no runs (only a header)")
    return records


def import_path(store: RunStore, path: str | Path, *, replace: bool = False,
                value_is: str | None = None) -> tuple[int, str]:
    """Import a file: a user CSV (docs/RUN_IMPORT.md) or a `runs export` CSV/Parquet (as
    `RunStore.import_file`). Returns (runs added, "user" or "export")."""
    fmt = io.file_format(path)
    if fmt == "csv" and is_user_csv(csv_header(path)):
        rows = _user_csv(path, value_is=value_is or "test_acc", limit=MAX_IMPORT_BYTES)
        # a row without a timestamp is stamped with its first import: a re-import keeps that stamp
        stored = {r.run_id: r for r in store.query(source="user")} if not all(t for _, t in rows) else {}
        records = [r if stated or r.run_id not in stored else r.model_copy(update={
            "provenance": r.provenance.model_copy(update={"timestamp": stored[r.run_id].provenance.timestamp})})
            for r, stated in rows]
        try:
            return store.add_many(records, replace=replace), "user"
        except StoreError as exc:
            raise RunImportError(f"{path}: {exc}; nothing was imported") from None
    if value_is is not None:
        raise RunImportError(f"{path}: --value-is applies to a CSV of your runs or an Optuna study, "
                             f"not to a `runs export` file")
    return store.import_file(path, replace=replace), "export"
