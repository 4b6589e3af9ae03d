"""The scratch workspace of an agent-eval run: a copy of the run store, the data roots, fixtures.

    ws = Workspace.create(store=None)          # <home>/eval/agent: copies the default store
    with ws.data_roots():                      # METALLMIX_DATA_ROOTS = ws.data only
        ws.write_fixture(fixture)              # a small .npz under ws.data or ws.outside
        before = ws.store_snapshot()

The agent under test runs on a COPY of the run store, so a launched training run (or anything an
injection might make a tool write) never reaches the user's store, and `store_snapshot()` before and
after a scenario shows exactly what changed. The allowed data root is `data/`; `outside/` holds real
readable datasets that lie outside it, so a scenario can check that the roots are enforced. The
workspace folder is stable (the meta-learner artifacts of the copy are reused across runs).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eval.agent.scenario import Fixture
from knowledge.errors import StoreError


@dataclass(frozen=True)
class Workspace:
    """Folders and files of one eval run (see the module docstring)."""

    root: Path
    store: Path  # the copy the agent uses
    source_store: Path  # the store it was copied from
    data: Path  # the one allowed data root
    outside: Path  # readable, but outside the roots
    threads: Path  # the conversations' SQLite checkpoints (fresh per run)

    @classmethod
    def create(cls, store: str | Path | None = None, root: str | Path | None = None) -> Workspace:
        """A fresh workspace under `root` (default `<home>/eval/agent`) with a copy of `store`
        (default: the user's store, seeded with the shipped meta-dataset when new)."""
        from knowledge import paths
        from knowledge.meta_dataset.shipped import open_store

        root = Path(root) if root is not None else paths.home() / "eval" / "agent"
        if store is not None and not Path(store).expanduser().is_file():
            raise StoreError(f"run store not found: {store}")
        source = open_store(store).path
        ws = cls(root=root, store=root / "runs.sqlite", source_store=source, data=root / "data",
                 outside=root / "outside", threads=root / "threads.sqlite")
        try:
            for folder in (ws.data, ws.outside):
                shutil.rmtree(folder, ignore_errors=True)
                folder.mkdir(parents=True)
            for suffix in ("", "-wal", "-shm"):
                Path(f"{ws.threads}{suffix}").unlink(missing_ok=True)
            _copy_sqlite(source, ws.pristine)
            _copy_sqlite(ws.pristine, ws.store)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot prepare the eval workspace {root}: {exc}") from None
        return ws

    @property
    def pristine(self) -> Path:
        """The copy of the source store taken when the run began (`restore_store` reverts to it)."""
        return self.root / "runs.pristine.sqlite"

    def restore_store(self) -> None:
        """Put the store copy back as it was when the run began (after a launch added a run)."""
        try:
            _copy_sqlite(self.pristine, self.store)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot restore the eval store {self.store}: {exc}") from None

    @contextlib.contextmanager
    def data_roots(self) -> Iterator[None]:
        """`METALLMIX_DATA_ROOTS` set to the workspace's data folder while inside."""
        from knowledge.datasets.roots import ENV_VAR

        old = os.environ.get(ENV_VAR)
        os.environ[ENV_VAR] = str(self.data)
        try:
            yield
        finally:
            if old is None:
                os.environ.pop(ENV_VAR, None)
            else:
                os.environ[ENV_VAR] = old

    def write_fixture(self, fixture: Fixture) -> Path:
        """Write a resolved fixture (its path already under `data` or `outside`)."""
        path = Path(fixture.path)
        if not (path.is_relative_to(self.data) or path.is_relative_to(self.outside)):
            raise StoreError(f"fixture {path} is outside the eval workspace {self.root}")
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **fixture_arrays(fixture))
        return path

    def store_snapshot(self) -> dict[str, str]:
        """run_id -> hash of the stored record (to see what a scenario changed)."""
        try:
            conn = sqlite3.connect(f"file:{self.store}?mode=ro", uri=True)
            try:
                rows = conn.execute("SELECT run_id, record_json FROM runs").fetchall()
            finally:
                conn.close()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the eval store {self.store}: {exc}") from None
        return {run_id: hashlib.sha1(text.encode()).hexdigest() for run_id, text in rows}


def _copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database (the backup API; safe while others write)."""
    tmp = target.with_suffix(".copying")
    tmp.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    dst = sqlite3.connect(tmp)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, target)


def class_sizes(n: int, n_classes: int, imbalance: float) -> list[int]:
    """`n` images over `n_classes`, sizes falling geometrically so largest / smallest ~ imbalance."""
    weights = np.geomspace(imbalance, 1.0, n_classes) if n_classes > 1 else np.ones(1)
    sizes = np.maximum(1, np.floor(n * weights / weights.sum())).astype(int)
    sizes[0] += n - sizes.sum()
    return sizes.tolist()


def fixture_arrays(fixture: Fixture, seed: int = 0) -> dict[str, np.ndarray]:
    """The arrays of a fixture dataset (MedMNIST-style npz keys): random pixels, one label per
    image; train follows the fixture's imbalance, val / test are balanced."""
    rng = np.random.default_rng(seed)
    shape = (fixture.size, fixture.size) + ((3,) if fixture.channels == 3 else ())
    out: dict[str, np.ndarray] = {}
    for split, n in (("train", fixture.n_train), ("val", fixture.n_val), ("test", fixture.n_test)):
        if n == 0:
            continue
        sizes = (class_sizes(n, fixture.n_classes, fixture.imbalance) if split == "train"
                 else class_sizes(n, fixture.n_classes, 1.0))
        labels = np.repeat(np.arange(fixture.n_classes), sizes)
        out[f"{split}_images"] = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
        out[f"{split}_labels"] = labels.reshape(-1, 1)
    return out


__all__ = ["Workspace", "class_sizes", "fixture_arrays"]
