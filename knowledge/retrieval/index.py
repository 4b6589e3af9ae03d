"""`RunIndex`: which past runs are most like this one — two FAISS indexes over the same run records.

Numeric index (`similar_runs`): each record's dataset meta-features as a vector — counts on a log
scale, z-scored over the distinct datasets indexed, missing values imputed with the mean plus a
missing-flag per feature, modality and task one-hot. A query may state only some traits (say the
number of classes and the modality), so the distance is a weighted squared L2 over the traits the
query states. That masked distance is still one FAISS inner-product search: records are stored as
`[x, x²]` and a query as `[2·w·q, −w]` (weights `w` zero where the query is silent), so
`<query, record> = Σ w·q² − Σ w·(q − x)²`. The best candidates are re-scored exactly in float64.

Text index (`search_text`): the run cards (`cards.run_card`) embedded by an `Embedder`, cosine
similarity via inner product of unit vectors. Embedding every card takes a while with a real model
(MiniLM: ~77 s for 1,440 cards on a busy 2-core CPU), and `similar_runs` does not need it: with
`embed_text=False` (`build`, `load_or_build`) the text index is *pending* and is built on the first
`search_text` (or `build_text()`), reusing any card vectors already computed, and then written back
to the directory the index was loaded from or saved to.

Persisted with `save(dir)` / `RunIndex.load(dir)`: `numeric.faiss`, `text.faiss`, `records.jsonl`
and `meta.json` (record count, data hash, embedder name, scaler statistics), plus `numeric.npy`
(the same record vectors as a NumPy array). `load_or_build` reuses a saved index and rebuilds it
when the records, the embedder or the format changed.

Speed (what `recommend` needs): the numeric index is a flat inner-product index, i.e. one matrix
product over every record; with a few thousand records NumPy does that exactly as fast as FAISS,
so `similar_runs` searches the `[x, x²]` matrix with NumPy (same float32 scores, same candidate
loop) and loading it reads `numeric.npy`: FAISS is imported only for the text index, which is read
from disk on the first free-text search. The cards are made on first use too.

The modules: `vectors` (the numeric vectors and query), `ranking` (`similar_runs` and the shared
ranking), `text_index` (the lazy text index, `search_text`), `storage` (save / load, `stale_reason`)
and `hit` (`Hit`, `RetrievalError`); `RunIndex` here puts them together, and every name stays
importable from this module.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.retrieval.cards import run_card
from knowledge.retrieval.embeddings import Embedder, get_embedder
from knowledge.retrieval.hit import Hit, RetrievalError
from knowledge.retrieval.ranking import MODEL_BOOST, SCHEME_BOOST, IndexRanking
from knowledge.retrieval.storage import (
    FILES,
    FORMAT_VERSION,
    NUMERIC_FILE,
    IndexStorage,
    data_hash,
    default_dir,
    stale_reason,
)
from knowledge.retrieval.text_index import TextIndex
from knowledge.retrieval.vectors import (
    _DIM,
    FEATURE_WEIGHTS,
    LOG_FEATURES,
    MISSING_WEIGHT,
    MODALITY_WEIGHT,
    TASK_WEIGHT,
    FeatureScaler,
    NumericQuery,
    feature_matrix,
)
from knowledge.runs.record import RunRecord

log = logging.getLogger(__name__)


class RunIndex(IndexRanking, TextIndex, IndexStorage):
    """Numeric and text FAISS indexes over the same run records. Build with `RunIndex.build`."""

    def __init__(self, embedder: Embedder, scaler: FeatureScaler) -> None:
        self.embedder = embedder
        self.scaler = scaler
        self._records: list[RunRecord] = []
        self._card_list: list[str] | None = []  # None: not made yet (`_cards` makes them)
        self._positions: dict[str, int] = {}
        self._x = np.zeros((0, _DIM), dtype=np.float32)
        self._numeric = np.zeros((0, 2 * _DIM), dtype=np.float32)  # records as [x, x²]
        self._text_vectors: np.ndarray | None = None
        self._text: Any = None  # faiss.IndexFlatIP of the card vectors
        self._column_cache: dict[str, np.ndarray] | None = None  # see `_columns`
        # A loaded text index not read yet: (file, pending, saved rows, dim); see `_load_text`.
        self._text_on_disk: tuple[Path, bool, list[int], int | None] | None = None
        # Pending text index: cards are embedded on first use; vectors known so far, by card text.
        self._text_pending = False
        self._pending_vectors: dict[str, np.ndarray] = {}
        self._text_lock = threading.Lock()
        self._directory: Path | None = None  # where it was loaded from / saved to
        self._hash = data_hash([])

    @property
    def _cards(self) -> list[str]:
        """The run cards, in record order (made from the records on first use)."""
        if self._card_list is None:
            self._card_list = [run_card(r) for r in self._records]
        return self._card_list

    def _card(self, position: int) -> str:
        """The card of one record (without making every card)."""
        if self._card_list is not None:
            return self._card_list[position]
        return run_card(self._records[position])

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def build(cls, records: Iterable[RunRecord], embedder: Embedder | None = None, *,
              embedding_cache: Mapping[str, np.ndarray] | None = None,
              embed_text: bool = True) -> RunIndex:
        """Index `records`; the scaler is fitted on them. `embedding_cache` maps card text to a
        vector already computed by the same embedder (used by `load_or_build`). `embed_text=False`
        leaves the text index pending (built by the first `search_text`), unless every card is in
        `embedding_cache` already."""
        records = list(records)
        index = cls(embedder or get_embedder(), FeatureScaler.fit([r.meta_features for r in records]))
        cache = dict(embedding_cache or {})
        if not embed_text and records and any(run_card(r) not in cache for r in records):
            index._text_pending = True
            index._pending_vectors = cache
        start = time.perf_counter()
        index._append(records, embedding_cache=cache)
        log.info("indexed %d runs with %s in %.2f s", len(records), index.embedder.name,
                 time.perf_counter() - start)
        return index

    def add(self, records: Iterable[RunRecord]) -> int:
        """Add new records (scaler statistics stay as fitted; `load_or_build` refits on rebuild).

        A record already indexed with the same content is skipped; a changed one is an error, since
        flat indexes are append-only here — rebuild to update. Returns how many were added.
        """
        new: list[RunRecord] = []
        seen: set[str] = set()
        for record in records:
            pos = self._positions.get(record.run_id)
            if pos is not None and self._records[pos] != record:
                raise RetrievalError(f"run {record.run_id} is already indexed with other content; "
                                     "rebuild the index to update it")
            if pos is None and record.run_id not in seen:
                new.append(record)
                seen.add(record.run_id)
        self._append(new)
        return len(new)

    def _append(self, records: list[RunRecord],
                embedding_cache: Mapping[str, np.ndarray] | None = None) -> None:
        ids = [r.run_id for r in records]
        if len(set(ids)) != len(ids) or self._positions.keys() & set(ids):
            dup = next(i for i in ids if ids.count(i) > 1 or i in self._positions)
            raise RetrievalError(f"duplicate run_id {dup} in the records to index")
        if not records:
            return
        self._load_text()
        known_cards = self._cards  # made before the new records join `_records`
        cards = [run_card(r) for r in records]
        x = feature_matrix([r.meta_features for r in records], self.scaler)
        self._numeric = np.vstack([self._numeric, np.hstack([x, x * x])]).astype(np.float32)
        vectors = (np.zeros((len(cards), 0), dtype=np.float32) if self._text_pending
                   else self._embed_cards(cards, embedding_cache or {}))
        if vectors.shape[1]:
            if self._text is None:
                import faiss

                self._text = faiss.IndexFlatIP(vectors.shape[1])
                self._text_vectors = np.zeros((0, vectors.shape[1]), dtype=np.float32)
            elif vectors.shape[1] != self._text.d:
                raise RetrievalError(f"embedder {self.embedder.name} gives {vectors.shape[1]}-dim "
                                     f"vectors; the text index has {self._text.d}")
            self._text.add(vectors)
            self._text_vectors = np.vstack([self._text_vectors, vectors])
        for record in records:
            self._positions[record.run_id] = len(self._records)
            self._records.append(record)
        self._card_list = known_cards + cards
        self._column_cache = None
        self._x = np.vstack([self._x, x])
        self._hash = data_hash(self._records, self._cards)

    # -- queries -----------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._records)

    @property
    def records(self) -> list[RunRecord]:
        return list(self._records)

    @property
    def data_hash(self) -> str:
        return self._hash

    def record(self, run_id: str) -> RunRecord:
        """The indexed record with this id (KeyError naming it otherwise)."""
        if run_id not in self._positions:
            raise KeyError(f"run {run_id} is not in the index")
        return self._records[self._positions[run_id]]

    def card(self, run_id: str) -> str:
        """The text card of an indexed run."""
        self.record(run_id)
        return self._card(self._positions[run_id])


__all__ = [
    "FEATURE_WEIGHTS",
    "FILES",
    "FORMAT_VERSION",
    "LOG_FEATURES",
    "MISSING_WEIGHT",
    "MODALITY_WEIGHT",
    "MODEL_BOOST",
    "NUMERIC_FILE",
    "SCHEME_BOOST",
    "TASK_WEIGHT",
    "FeatureScaler",
    "Hit",
    "NumericQuery",
    "RetrievalError",
    "RunIndex",
    "data_hash",
    "default_dir",
    "feature_matrix",
    "stale_reason",
]
