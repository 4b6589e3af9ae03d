"""`Advisor`: the loaded meta-learner and retrieval index of one run store, refreshed when the
store changes (a stamp lets a new process load both without reading every record), and where
their artifacts live (`artifact_dirs`, `store_fingerprint`)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge import paths
from knowledge.errors import StoreError
from knowledge.meta_dataset.shipped import open_store
from knowledge.metafeatures import MetaFeatures
from knowledge.metalearner import artifact
from knowledge.metalearner.artifact import default_dir as learner_dir
from knowledge.metalearner.budget import Budget
from knowledge.recommend.algorithm import SIMILAR_K, _learner_info, _recommend
from knowledge.recommend.result import Recommendation
from knowledge.retrieval.embeddings import get_embedder
from knowledge.retrieval.index import FORMAT_VERSION, Hit, RetrievalError, RunIndex
from knowledge.retrieval.index import default_dir as index_dir
from knowledge.retrieval.storage import _read_meta
from knowledge.runs.record import record_to_row
from knowledge.runs.storages import is_url
from knowledge.runs.store import RunStore

if TYPE_CHECKING:
    import pandas as pd

    from knowledge.metalearner.model import MetaLearner
    from knowledge.retrieval.embeddings import Embedder
    from knowledge.retrieval.index import RunIndex
    from knowledge.runs.record import RunRecord
    from knowledge.runs.store import RunStore

log = logging.getLogger(__name__)

class _FrameSnapshot:
    """The one method `artifact.load_or_fit` calls on a store, over records already read."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame

    def to_frame(self) -> pd.DataFrame:
        return self._frame


def _frame(records: list[RunRecord]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame([record_to_row(r) for r in records])  # as RunStore.to_frame


def store_fingerprint(store: RunStore) -> tuple[Any, ...]:
    """Cheap "did the store change" key (`RunStore.fingerprint`: it changes on every add or replace)."""
    return store.fingerprint()


def _is_default(store: RunStore) -> bool:
    """Whether `store` is the user's default store (`$METALLMIX_STORE` or `<home>/runs.sqlite`)."""
    default = paths.store_url()
    if is_url(default):
        return store.url == default
    return store.identity == os.path.realpath(default)


def artifact_dirs(store: RunStore) -> tuple[Path, Path]:
    """(meta-learner dir, retrieval index dir) for a store: the default artifact dirs for the
    default store, per-store dirs under `<artifacts>/stores/<hash of its identity>` for any other."""
    if _is_default(store):
        return learner_dir(), index_dir()
    key = hashlib.sha1(store.identity.encode()).hexdigest()[:12]
    base = paths.artifacts_dir() / "stores" / key
    return base / "metalearner", base / "index"


class Advisor:
    """The loaded meta-learner and retrieval index of one run store, refreshed when it changes.

    `learner` / `index` given here are used as they are (never reloaded)."""

    def __init__(self, store: RunStore | str | Path | None = None, *,
                 learner: MetaLearner | None = None, index: RunIndex | None = None,
                 embedder: Embedder | None = None) -> None:
        self.store = store if isinstance(store, RunStore) else open_store(store)
        self.embedder = embedder
        self._fixed_learner, self._fixed_index = learner, index
        self._learner, self._index = learner, index
        self._fingerprint: tuple[Any, ...] | None = None
        self._lock = threading.RLock()

    def _refresh(self) -> None:
        """Load (or fit / build) what is missing or stale, reading the store once.

        A stamp (`<artifacts>/advisor/<store hash>.json`) remembers the store's fingerprint and the
        data hashes of the learner and index that served it, so a new process (each CLI call) loads
        both without reading and hashing every record while the store is unchanged.
        """
        fingerprint = store_fingerprint(self.store)
        if fingerprint == self._fingerprint and self._learner is not None and self._index is not None:
            return
        started = time.perf_counter()
        learner_dir, index_dir = artifact_dirs(self.store)
        if self._load_stamped(fingerprint, learner_dir, index_dir):
            self._fingerprint = fingerprint
            log.info("advisor for %s loaded in %.2f s (store unchanged)", self.store.path,
                     time.perf_counter() - started)
            return
        records = self.store.query()
        if self._fixed_learner is None:
            snapshot: Any = _FrameSnapshot(_frame(records))  # all load_or_fit reads of a store
            try:
                self._learner = artifact.load_or_fit(snapshot, directory=learner_dir)
            except StoreError as exc:
                raise StoreError(f"run store {self.store.path}: {exc}") from None
        if self._fixed_index is None:
            self._index = RunIndex.load_or_build(records, index_dir, embedder=self._embedder(index_dir),
                                                 embed_text=False)
        self._fingerprint = fingerprint
        if store_fingerprint(self.store) == fingerprint:  # nothing was written while we read
            self._write_stamp(fingerprint)
        log.info("advisor for %s ready in %.2f s (%d records)", self.store.path,
                 time.perf_counter() - started, len(records))

    def _stamp_path(self) -> Path:
        key = hashlib.sha1(self.store.identity.encode()).hexdigest()[:12]
        return paths.artifacts_dir() / "advisor" / f"{key}.json"

    def _write_stamp(self, fingerprint: tuple[Any, ...]) -> None:
        assert self._learner is not None and self._index is not None
        stamp = {"store": self.store.identity, "fingerprint": fingerprint,
                 "learner_hash": self._learner.data_hash, "index_hash": self._index.data_hash}
        path = self._stamp_path()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(stamp))
            os.replace(tmp, path)
        except OSError as exc:  # only a speed-up: never fail a recommendation for it
            log.debug("cannot write the advisor stamp %s: %s", path, exc)

    def _load_stamped(self, fingerprint: tuple[Any, ...], learner_dir: Path, index_dir: Path) -> bool:
        """Load the learner and index the stamp names, if the store is unchanged since; else False."""
        try:
            stamp = json.loads(self._stamp_path().read_text())
        except (OSError, ValueError):
            return False
        if stamp.get("store") != self.store.identity or (
                stamp.get("fingerprint") != json.loads(json.dumps(fingerprint))):
            return False
        try:
            learner, index = self._fixed_learner, self._fixed_index
            if learner is None:
                meta = artifact.read_metadata(learner_dir)
                if (artifact.incompatibility(meta) or meta.get("source_weight")
                        or meta.get("data_hash") != stamp.get("learner_hash")):
                    return False
                learner = artifact.load(learner_dir)
            if index is None:
                meta = _read_meta(index_dir)
                if not meta or meta.get("format_version") != FORMAT_VERSION or (
                        meta.get("data_hash") != stamp.get("index_hash")):
                    return False
                index = RunIndex.load(index_dir, self._embedder(index_dir))
        except (StoreError, RetrievalError, OSError, ValueError) as exc:
            log.debug("advisor stamp not usable: %s", exc)
            return False
        self._learner, self._index = learner, index
        return True

    def _embedder(self, index_dir: Path) -> Embedder:
        """The embedder given, else `get_embedder()` (MiniLM when installed; it loads only when a
        text search first needs it)."""
        if self.embedder is None:
            self.embedder = get_embedder()
        return self.embedder

    @property
    def learner(self) -> MetaLearner:
        with self._lock:
            self._refresh()
            assert self._learner is not None
            return self._learner

    @property
    def index(self) -> RunIndex:
        with self._lock:
            self._refresh()
            assert self._index is not None
            return self._index

    def learner_info(self) -> dict[str, Any]:
        """What the UI shows about the meta-learner: version, records per source, fit time."""
        return {**_learner_info(self.learner), "store": str(self.store.path)}

    def recommend(self, meta: MetaFeatures, *, top_k: int = 5, budget: Budget | str | None = None,
                  exclude_base: Iterable[str] | None = None, supported_only: bool = False,
                  similar_k: int = SIMILAR_K, dataset: str | None = None,
                  require: dict[str, Any] | None = None) -> Recommendation:
        """See `recommend`."""
        started = time.perf_counter()
        with self._lock:
            self._refresh()
            learner, index = self._learner, self._index
        assert learner is not None and index is not None
        return _recommend(meta, learner, index, learner_info=self.learner_info(), top_k=top_k,
                          budget=budget, exclude_base=exclude_base, supported_only=supported_only,
                          similar_k=similar_k, dataset=dataset, started=started, require=require)

    def search_text(self, question: str, k: int = 5, **kwargs: Any) -> list[Hit]:
        """Free-text search over the run cards (the first call embeds every card: slow)."""
        return self.index.search_text(question, k, **kwargs)
