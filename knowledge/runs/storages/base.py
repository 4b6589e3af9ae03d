"""The interface every run-store backend implements (`Storage`), and URL helpers.

A backend stores rows `(run_id, dataset_id, base_dataset, source, status, model, created_at,
record_json)` in a table `runs` and knows nothing of records beyond that: validation, decoding and
the duplicate rule (`on_conflict`) stay in `knowledge.runs.store.RunStore`, the facade callers use.
Every backend gives the same guarantees: a call to `add_rows` is one transaction (all or nothing,
also when the process is killed), and concurrent writers neither lose nor duplicate a run.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from knowledge.runs.record import RunRecord

Row = tuple[str, ...]
FILTERS = ("source", "dataset_id", "base_dataset", "status", "model")
SUMMARY_COLUMNS = ("source", "status", "base_dataset", "model")

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")


def is_url(target: str) -> bool:
    """Whether `target` is a URL (`scheme://...`) rather than a file path."""
    return bool(_URL.match(target))


def mask_url(url: str) -> str:
    """The URL with its password (in the user info or a `password=` parameter) replaced by ***."""
    url = re.sub(r"(://[^/@:]*:)[^@/]*@", r"\1***@", url)
    return re.sub(r"((?:^|[?&])password=)[^&]*", r"\1***", url, flags=re.IGNORECASE)


class Storage(ABC):
    """A run-store backend. `url` reopens the same store (it may hold a password: never show it);
    `display` is safe to show (`path`: the SQLite file, else `display`); `identity` names the store
    stably across reopening."""

    url: str
    path: Path | str
    display: str
    identity: str

    @abstractmethod
    def add_rows(self, items: Iterable[tuple[RunRecord, Row]],
                 on_conflict: Callable[[RunRecord, str], bool]) -> int:
        """Insert `(record, row)` pairs in ONE transaction; returns how many were new. For a run_id
        already stored, `on_conflict(record, stored_json)` says whether to overwrite it (True), keep
        it (False) or raises (and then nothing of the call is written)."""

    @abstractmethod
    def get_json(self, run_id: str) -> str | None:
        """The stored `record_json` of a run, or None."""

    @abstractmethod
    def contains(self, run_id: str) -> bool:
        """Whether a run is stored."""

    @abstractmethod
    def select(self, filters: dict[str, str], limit: int | None) -> list[tuple[str, str]]:
        """`(run_id, record_json)` of the matching runs in insertion order (at most `limit`)."""

    @abstractmethod
    def count(self, filters: dict[str, str]) -> int:
        """How many runs match."""

    @abstractmethod
    def group_counts(self, column: str, filters: dict[str, str]) -> dict[str, int]:
        """`{value: n}` of one column over the matching runs, most frequent first."""

    @abstractmethod
    def fingerprint(self) -> tuple[Any, ...]:
        """A cheap JSON-able value that changes whenever a run is added or replaced."""
