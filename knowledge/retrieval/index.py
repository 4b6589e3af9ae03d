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
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from knowledge import paths
from knowledge.errors import MetaLLMiXError
from knowledge.metafeatures import MODALITIES, NUMERIC_FEATURES, TASK_TYPES, MetaFeatures
from knowledge.retrieval.cards import run_card
from knowledge.retrieval.embeddings import Embedder, EmbeddingError, get_embedder
from knowledge.runs.record import RunRecord
from knowledge.search_space import TrainConfig

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
FILES = ("meta.json", "records.jsonl", "numeric.faiss", "text.faiss")
NUMERIC_FILE = "numeric.npy"  # the record vectors for NumPy search (written since format 1)

# Features compared on a log scale (counts and sizes); the others (entropy, channels) as they are.
LOG_FEATURES = frozenset({"n_instances", "n_classes", "imbalance_ratio", "height", "width",
                          "class_size_mean", "class_size_std", "class_size_min", "class_size_max"})
# How much each stated trait counts in the distance (in squared z-units). The four class-size
# statistics largely repeat n_instances and n_classes, so they count for little.
FEATURE_WEIGHTS: dict[str, float] = {
    "n_instances": 1.0, "n_classes": 1.5, "imbalance_ratio": 1.0, "class_entropy": 0.5,
    "height": 0.5, "width": 0.5, "channels": 0.5,
    "class_size_mean": 0.25, "class_size_std": 0.25, "class_size_min": 0.25, "class_size_max": 0.25,
}
MODALITY_WEIGHT = 4.0  # distance added by a different modality (half of it when the record has none)
TASK_WEIGHT = 1.0
MISSING_WEIGHT = 0.5  # a record that lacks a trait the query states
MODEL_BOOST = 0.10  # score added for the same model as the `config` given to similar_runs
SCHEME_BOOST = 0.05  # ... and for the same training scheme
_TOLERANCE = 1e-3  # float32 rounding allowance of FAISS scores when deciding to fetch more

_F, _M, _T = len(NUMERIC_FEATURES), len(MODALITIES), len(TASK_TYPES)
_DIM = 2 * _F + _M + _T  # z-scores, missing flags, modality one-hot, task one-hot


class RetrievalError(MetaLLMiXError):
    """The retrieval index could not be built, read or queried."""


class Hit(BaseModel):
    """One retrieved run: how close it is and what it was."""

    run_id: str
    dataset_id: str
    base_dataset: str
    score: float  # higher is more similar (config boosts included)
    distance: float  # numeric: RMS weighted z-distance over the stated traits; text: 1 - cosine
    card: str
    model: str
    scheme: str
    resolution: int
    test_acc: float | None = None
    test_acc_std: float | None = None
    status: str
    source: str


# --- numeric vectors -----------------------------------------------------------------------------

@dataclass(frozen=True)
class FeatureScaler:
    """Per-feature mean and std of the transformed meta-features (log scale where in LOG_FEATURES)."""

    mean: dict[str, float]
    std: dict[str, float]

    @staticmethod
    def transformed(metas: Sequence[MetaFeatures]) -> np.ndarray:
        """(n, F) float64: log1p of counts, raw otherwise, NaN where missing."""
        raw = np.array([[m.numeric()[f] for f in NUMERIC_FEATURES] for m in metas],
                       dtype=np.float64).reshape(len(metas), _F)
        logged = [i for i, f in enumerate(NUMERIC_FEATURES) if f in LOG_FEATURES]
        raw[:, logged] = np.log1p(raw[:, logged])
        return raw

    @classmethod
    def fit(cls, metas: Sequence[MetaFeatures]) -> FeatureScaler:
        """Statistics over the distinct meta-feature vectors (so a dataset with many runs does not
        dominate); a feature nobody states gets mean 0, std 1."""
        unique = list({m.model_dump_json(): m for m in metas}.values())
        values = cls.transformed(unique)
        mean, std = {}, {}
        for i, name in enumerate(NUMERIC_FEATURES):
            col = values[:, i][~np.isnan(values[:, i])]
            mean[name] = float(col.mean()) if col.size else 0.0
            sd = float(col.std()) if col.size > 1 else 0.0
            std[name] = sd if sd > 1e-9 else 1.0
        return cls(mean, std)

    def z(self, metas: Sequence[MetaFeatures]) -> np.ndarray:
        """(n, F) z-scores, NaN where missing."""
        mean = np.array([self.mean[f] for f in NUMERIC_FEATURES])
        std = np.array([self.std[f] for f in NUMERIC_FEATURES])
        return (self.transformed(metas) - mean) / std


def _one_hot(value: str | None, choices: tuple[str, ...]) -> np.ndarray:
    out = np.zeros(len(choices))
    if value is not None:
        out[choices.index(value)] = 1.0
    return out


def feature_matrix(metas: Sequence[MetaFeatures], scaler: FeatureScaler) -> np.ndarray:
    """(n, D) float32 record vectors: [z (mean-imputed), missing flags, modality, task one-hot]."""
    z = scaler.z(metas)
    missing = np.isnan(z)
    cats = np.array([np.concatenate([_one_hot(m.modality, MODALITIES), _one_hot(m.task, TASK_TYPES)])
                     for m in metas]).reshape(len(metas), _M + _T)
    return np.hstack([np.where(missing, 0.0, z), missing, cats]).astype(np.float32)


@dataclass(frozen=True)
class NumericQuery:
    """A query's target vector `q`, per-dimension weights `w` (0 = not stated) and total weight."""

    q: np.ndarray
    w: np.ndarray
    total_weight: float

    @classmethod
    def from_meta(cls, meta: MetaFeatures, scaler: FeatureScaler) -> NumericQuery:
        z = scaler.z([meta])[0]
        q, w = np.zeros(_DIM), np.zeros(_DIM)
        total = 0.0
        for i, name in enumerate(NUMERIC_FEATURES):
            if not np.isnan(z[i]):
                q[i], w[i] = z[i], FEATURE_WEIGHTS[name]
                w[_F + i] = MISSING_WEIGHT  # target 0 = "the record knows it too"
                total += FEATURE_WEIGHTS[name]
        for value, choices, start, weight in ((meta.modality, MODALITIES, 2 * _F, MODALITY_WEIGHT),
                                              (meta.task, TASK_TYPES, 2 * _F + _M, TASK_WEIGHT)):
            if value is not None:
                q[start:start + len(choices)] = _one_hot(value, choices)
                w[start:start + len(choices)] = weight / 2  # a mismatch differs in two dimensions
                total += weight
        if total == 0:
            raise RetrievalError("similar_runs: no meta-features given; state at least one trait "
                                 "(classes, images, imbalance, image size, modality, task)")
        return cls(q, w, total)

    def faiss_vector(self) -> np.ndarray:
        """The (1, 2D) inner-product query against records stored as [x, x²]."""
        return np.concatenate([2 * self.w * self.q, -self.w])[None, :].astype(np.float32)

    def squared_distance_from_ip(self, ip: np.ndarray) -> np.ndarray:
        return float(np.sum(self.w * self.q**2)) - ip.astype(np.float64)

    def squared_distance(self, x: np.ndarray) -> np.ndarray:
        """Exact weighted squared distance to record vectors (n, D), float64."""
        return ((x.astype(np.float64) - self.q) ** 2 * self.w).sum(axis=1)

    def score(self, squared: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(score, distance): distance = RMS over the stated weight, score = exp(-distance)."""
        distance = np.sqrt(np.maximum(squared, 0.0) / self.total_weight)
        return np.exp(-distance), distance


# --- hashing and persistence helpers -------------------------------------------------------------

def _record_digest(record: RunRecord, card: str) -> str:
    return hashlib.sha1((record.model_dump_json() + "\n" + card).encode()).hexdigest()


def data_hash(records: Sequence[RunRecord], cards: Sequence[str] | None = None) -> str:
    """Order-independent hash of the records and their cards (a new card format counts as a change)."""
    cards = cards if cards is not None else [run_card(r) for r in records]
    digests = sorted(_record_digest(r, c) for r, c in zip(records, cards))
    return hashlib.sha1("".join(digests).encode()).hexdigest()


def default_dir() -> Path:
    """`<artifacts>/index`."""
    return paths.artifacts_dir() / "index"


def _read_meta(directory: Path) -> dict | None:
    try:
        return json.loads((directory / "meta.json").read_text())
    except (OSError, ValueError):
        return None


def stale_reason(records: Sequence[RunRecord], directory: str | Path | None = None,
                 embedder_name: str | None = None, *, cards: Sequence[str] | None = None) -> str | None:
    """Why the index saved in `directory` does not serve `records` (None: it is up to date)."""
    directory = Path(directory) if directory is not None else default_dir()
    meta = _read_meta(directory)
    if meta is None:
        return f"no readable index in {directory}"
    if meta.get("format_version") != FORMAT_VERSION:
        return f"index format {meta.get('format_version')} != {FORMAT_VERSION}"
    if embedder_name is not None and meta.get("embedder") != embedder_name:
        return f"embedder changed ({meta.get('embedder')} -> {embedder_name})"
    if meta.get("count") != len(records):
        return f"record count changed ({meta.get('count')} -> {len(records)})"
    if meta.get("data_hash") != data_hash(records, cards):
        return "records changed (data hash differs)"
    if any(not (directory / name).is_file() for name in FILES):
        return f"index files missing in {directory}"
    return None


def _read_numeric(directory: Path, meta: dict) -> tuple[np.ndarray, Path]:
    """The saved record vectors ([x, x²], float32): `numeric.npy` when this index wrote it (its
    meta.json says so), else the FAISS file (indexes saved before the .npy existed)."""
    if meta.get("numeric_file") == NUMERIC_FILE and (directory / NUMERIC_FILE).is_file():
        path = directory / NUMERIC_FILE
        return np.load(path, allow_pickle=False).astype(np.float32, copy=False), path
    import faiss

    path = directory / "numeric.faiss"
    index = faiss.read_index(str(path))
    vectors = index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros(
        (0, 2 * _DIM), dtype=np.float32)
    return vectors, path


class _UnavailableEmbedder(Embedder):
    """Stands in for a saved index's embedder that cannot be recreated here: the numeric index still
    works, a text query fails with the reason."""

    def __init__(self, name: str, reason: str) -> None:
        self.name, self.reason = name, reason

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        raise EmbeddingError(f"text search needs embedder {self.name}: {self.reason}")


def _config_fields(config: TrainConfig | Mapping[str, Any] | None) -> tuple[str | None, str | None]:
    if config is None:
        return None, None
    data = config.model_dump() if isinstance(config, TrainConfig) else dict(config)
    return data.get("model"), data.get("scheme")


# --- the index -----------------------------------------------------------------------------------

class RunIndex:
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

    def _load_text(self) -> None:
        """Read the text index of a loaded index from disk (deferred from `load`), once."""
        if self._text_on_disk is None:
            return
        path, pending, rows, dim = self._text_on_disk
        self._text_on_disk = None
        if not dim:
            return
        import faiss

        try:
            text = faiss.read_index(str(path))
        except (OSError, RuntimeError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RetrievalError(f"{path}: cannot read the retrieval index: {reason}") from None
        expected = len(rows) if pending else len(self._records)
        if text.ntotal != expected or (pending and any(not 0 <= i < len(self) for i in rows)):
            raise RetrievalError(f"{path.parent}: index files disagree on the record count; "
                                 "rebuild it")
        vectors = text.reconstruct_n(0, text.ntotal) if text.ntotal else None
        if pending:
            if vectors is not None:
                self._pending_vectors = {self._cards[i]: v for i, v in zip(rows, vectors)}
        else:
            self._text, self._text_vectors = text, vectors

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

    def _embed_cards(self, cards: list[str], cache: Mapping[str, np.ndarray]) -> np.ndarray:
        from tqdm import tqdm

        todo = list(dict.fromkeys(c for c in cards if c not in cache))
        fresh: dict[str, np.ndarray] = {}
        chunk = 256  # a model embeds ~20-50 cards/s on a busy laptop CPU: show progress
        with tqdm(total=len(todo), desc="embedding run cards", unit="card",
                  disable=len(todo) <= chunk, leave=False) as bar:
            for start in range(0, len(todo), chunk):
                part = todo[start:start + chunk]
                fresh.update(zip(part, self._embed(part)))
                bar.update(len(part))
        vectors = [fresh[c] if c in fresh else cache[c] for c in cards]
        return np.ascontiguousarray(np.vstack(vectors), dtype=np.float32)

    def _embed(self, texts: list[str]) -> np.ndarray:
        try:
            return self.embedder.embed(texts)
        except EmbeddingError:
            raise
        except Exception as exc:  # a model failing at runtime: one line, naming the embedder
            raise RetrievalError(f"embedder {self.embedder.name} failed: {exc}") from exc

    # -- the (lazy) text index ---------------------------------------------------------------

    @property
    def text_pending(self) -> bool:
        """True while the text index waits for its cards to be embedded (first `search_text`)."""
        return self._text_pending

    def build_text(self) -> None:
        """Embed the cards of a pending text index now (no-op when it is built), then write it to
        the index directory when that still holds this index without its text."""
        with self._text_lock:
            self._load_text()
            if not self._text_pending:
                return
            import faiss

            start = time.perf_counter()
            vectors = self._embed_cards(self._cards, self._pending_vectors)
            text = faiss.IndexFlatIP(vectors.shape[1])
            text.add(vectors)
            self._text, self._text_vectors = text, vectors
            self._text_pending, self._pending_vectors = False, {}
            log.info("embedded %d run cards with %s in %.1f s", len(self._cards), self.embedder.name,
                     time.perf_counter() - start)
            directory = self._directory
            meta = _read_meta(directory) if directory is not None else None
            if meta and meta.get("text_pending") and meta.get("data_hash") == self._hash:
                try:
                    self.save(directory)
                except RetrievalError as exc:
                    log.warning("text index built but not saved: %s", exc)

    def _known_vectors(self) -> dict[str, np.ndarray]:
        """Card text -> vector for every card embedded so far (to reuse on a rebuild)."""
        self._load_text()
        if self._text_pending:
            return dict(self._pending_vectors)
        if self._text_vectors is None:
            return {}
        return dict(zip(self._cards, self._text_vectors))

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

    def similar_runs(self, meta: MetaFeatures | Mapping[str, Any], k: int = 5, *,
                     config: TrainConfig | Mapping[str, Any] | None = None,
                     status: str | None = "ok", dedupe_datasets: bool = False,
                     exclude_base: Iterable[str] | None = None) -> list[Hit]:
        """The `k` runs whose datasets are most like `meta` (only the traits it states count).

        `config` (a TrainConfig or a mapping with `model`/`scheme`) boosts runs with the same model
        and scheme; `status` keeps runs with that status (None: all); `dedupe_datasets` keeps the
        best run per dataset; `exclude_base` drops runs of those base datasets (leave-one-out).
        Ties are broken by higher test accuracy.
        """
        if not isinstance(meta, MetaFeatures):
            try:
                meta = MetaFeatures.model_validate(meta)
            except ValidationError as exc:
                raise RetrievalError(f"similar_runs: bad meta-features: {exc.errors()[0]['msg']}") from None
        query = NumericQuery.from_meta(meta, self.scaler)

        def exact(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return query.score(query.squared_distance(self._x[ids]))

        def bound(raw_last: float) -> float:
            squared = query.squared_distance_from_ip(np.array([raw_last]))[0] - _TOLERANCE
            return float(query.score(np.array([squared]))[0][0])

        return self._rank(self._numeric_search, query.faiss_vector(), k, exact, bound,
                          status=status, exclude_base=exclude_base, config=config,
                          dedupe=dedupe_datasets)

    def search_text(self, query: str, k: int = 5, *, status: str | None = "ok",
                    exclude_base: Iterable[str] | None = None,
                    dedupe_datasets: bool = False) -> list[Hit]:
        """The `k` runs whose cards are closest in meaning to a free-text question."""
        if not query or not query.strip():
            raise RetrievalError("search_text: empty query")
        if not len(self):
            return []
        self._load_text()
        if self._text_pending:
            self.build_text()
        if self._text is None:
            return []
        vector = self._embed([query])
        if vector.shape[1] != self._text.d:
            raise RetrievalError(f"search_text: embedder {self.embedder.name} gives "
                                 f"{vector.shape[1]}-dim vectors; the index has {self._text.d}")
        vector = np.ascontiguousarray(vector, dtype=np.float32)
        target = vector[0].astype(np.float64)

        def exact(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            cosine = self._text_vectors[ids].astype(np.float64) @ target
            return cosine, 1.0 - cosine

        return self._rank(self._text_search, vector, k, exact, lambda raw: raw + _TOLERANCE,
                          status=status, exclude_base=exclude_base, config=None,
                          dedupe=dedupe_datasets)

    def _columns(self) -> dict[str, np.ndarray]:
        """Per-record fields the ranking reads, as arrays (made once, reset when records are
        added): status, lower-cased base dataset, dataset id, model, scheme, test accuracy."""
        if self._column_cache is None:
            records = self._records
            self._column_cache = {
                "status": np.array([r.status for r in records], dtype=object),
                "base": np.array([r.base_dataset.lower() for r in records], dtype=object),
                "dataset": np.array([r.dataset_id for r in records], dtype=object),
                "model": np.array([r.config.model for r in records], dtype=object),
                "scheme": np.array([r.config.scheme for r in records], dtype=object),
                "acc": np.array([np.nan if r.outcome.test_acc is None else r.outcome.test_acc
                                 for r in records], dtype=float),
            }
        return self._column_cache

    def _allowed(self, status: str | None, exclude_base: Iterable[str] | None) -> np.ndarray | None:
        excluded = {b.lower() for b in (exclude_base or ())}
        if status is None and not excluded:
            return None
        cols = self._columns()
        keep = np.ones(len(self._records), dtype=bool)
        if status is not None:
            keep &= cols["status"] == status
        if excluded:
            keep &= ~np.isin(cols["base"], list(excluded))
        return np.flatnonzero(keep).astype(np.int64)

    def _numeric_search(self, vector: np.ndarray, fetch: int,
                        allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """The `fetch` best inner products of `vector` with the record vectors, best first, as
        FAISS's `IndexFlatIP.search` returns them (float32 scores; ties to the lower id)."""
        ids = np.arange(len(self._numeric)) if allowed is None else allowed
        raw = self._numeric[ids] @ vector[0].astype(np.float32)
        top = np.lexsort((ids, -raw))[:fetch]
        return raw[top][None, :], ids[top][None, :]

    def _text_search(self, vector: np.ndarray, fetch: int,
                     allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        params = None if allowed is None else faiss.SearchParameters(
            sel=faiss.IDSelectorBatch(allowed))
        return self._text.search(vector, fetch, params=params)

    def _rank(self, search: Callable[[np.ndarray, int, np.ndarray | None],
                                     tuple[np.ndarray, np.ndarray]], vector: np.ndarray, k: int,
              exact: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
              bound: Callable[[float], float], *, status: str | None,
              exclude_base: Iterable[str] | None, config: Any, dedupe: bool) -> list[Hit]:
        """Search candidates (`search(vector, n, allowed ids)`), re-scored exactly, boosted,
        tie-broken and de-duplicated.

        Fetches more candidates until no unfetched one could still make the top `k`: the search
        returns them best first, so the last fetched raw score bounds every unfetched one.
        """
        allowed = self._allowed(status, exclude_base)
        n_allowed = len(self._records) if allowed is None else len(allowed)
        if k <= 0 or n_allowed == 0:
            return []
        model, scheme = _config_fields(config)
        max_boost = (MODEL_BOOST if model else 0.0) + (SCHEME_BOOST if scheme else 0.0)
        fetch = min(n_allowed, max(4 * k, 64))
        cols = self._columns()
        while True:
            raw, found = search(vector, fetch, allowed)
            valid = found[0] >= 0
            ids, raw = found[0][valid], raw[0][valid]
            scores, distances = exact(ids)
            boosted = scores + (MODEL_BOOST * (cols["model"][ids] == model) if model else 0.0) + (
                SCHEME_BOOST * (cols["scheme"][ids] == scheme) if scheme else 0.0)
            boosted = np.asarray(boosted, dtype=float)
            acc = cols["acc"][ids]
            order = np.lexsort((ids, -np.nan_to_num(acc, nan=-1.0), -boosted))
            chosen: list[int] = []
            datasets: set[str] = set()
            for j in order:
                dataset = cols["dataset"][ids[j]]
                if dedupe and dataset in datasets:
                    continue
                datasets.add(dataset)
                chosen.append(j)
                if len(chosen) == k:
                    break
            if fetch >= n_allowed or (
                len(chosen) == k and bound(float(raw[-1])) + max_boost < boosted[chosen[-1]]
            ):
                break
            fetch = min(n_allowed, fetch * 4)
        return [self._hit(int(ids[j]), float(boosted[j]), float(distances[j])) for j in chosen]

    def _hit(self, position: int, score: float, distance: float) -> Hit:
        r = self._records[position]
        return Hit(run_id=r.run_id, dataset_id=r.dataset_id, base_dataset=r.base_dataset,
                   score=round(score, 6), distance=round(max(distance, 0.0), 6),
                   card=self._card(position), model=r.config.model, scheme=r.config.scheme,
                   resolution=r.config.resolution, test_acc=r.outcome.test_acc,
                   test_acc_std=r.outcome.test_acc_std, status=r.status, source=r.provenance.source)

    # -- persistence -------------------------------------------------------------------------

    def save(self, directory: str | Path | None = None) -> Path:
        """Write the index to `directory` (default `<artifacts>/index`); meta.json goes last, so an
        interrupted save reads as stale, never as a mixed index."""
        import faiss

        directory = Path(directory) if directory is not None else default_dir()
        self._load_text()
        try:
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "meta.json").unlink(missing_ok=True)
            numeric = faiss.IndexFlatIP(2 * _DIM)
            if len(self._numeric):
                numeric.add(np.ascontiguousarray(self._numeric, dtype=np.float32))
            faiss.write_index(numeric, str(directory / "numeric.faiss"))
            with open(directory / NUMERIC_FILE, "wb") as f:
                np.save(f, np.ascontiguousarray(self._numeric, dtype=np.float32))
            text_rows: list[int] = []
            if self._text_pending:  # keep the card vectors computed so far
                text_rows = [i for i, c in enumerate(self._cards) if c in self._pending_vectors]
                vectors = [self._pending_vectors[self._cards[i]] for i in text_rows]
                text = faiss.IndexFlatIP(len(vectors[0]) if vectors else 1)
                if vectors:
                    text.add(np.ascontiguousarray(np.vstack(vectors), dtype=np.float32))
            else:
                text = self._text if self._text is not None else faiss.IndexFlatIP(1)
            faiss.write_index(text, str(directory / "text.faiss"))
            with open(directory / "records.jsonl", "w", encoding="utf-8") as f:
                for record in self._records:
                    f.write(record.model_dump_json() + "\n")
            meta = {
                "format_version": FORMAT_VERSION,
                "count": len(self._records),
                "data_hash": self._hash,
                "embedder": self.embedder.name,
                "text_dim": (text.d if text.ntotal else None) if self._text_pending else (
                    self._text.d if self._text is not None else None),
                "text_pending": self._text_pending,
                "text_rows": text_rows,
                "numeric_dim": _DIM,
                "numeric_file": NUMERIC_FILE,
                "scaler": {"mean": self.scaler.mean, "std": self.scaler.std},
                "run_ids": [r.run_id for r in self._records],
                "saved_at": datetime.now(timezone.utc).isoformat(),
            }
            fd, tmp = tempfile.mkstemp(prefix=".meta.", suffix=".tmp", dir=directory)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(meta, f, indent=1)
            os.replace(tmp, directory / "meta.json")
        except (OSError, RuntimeError) as exc:
            raise RetrievalError(f"{directory}: cannot save the retrieval index: {exc}") from None
        self._directory = directory
        log.info("saved retrieval index (%d runs) to %s", len(self), directory)
        return directory

    @classmethod
    def load(cls, directory: str | Path | None = None, embedder: Embedder | None = None) -> RunIndex:
        """Read an index written by `save`. Without `embedder`, the one it was built with is
        recreated from its name (the model itself loads only when a text query needs it)."""
        directory = Path(directory) if directory is not None else default_dir()
        meta = _read_meta(directory)
        if meta is None:
            raise RetrievalError(f"{directory / 'meta.json'}: no readable retrieval index")
        if meta.get("format_version") != FORMAT_VERSION:
            raise RetrievalError(f"{directory / 'meta.json'}: index format "
                                 f"{meta.get('format_version')}, expected {FORMAT_VERSION}; rebuild it")
        if embedder is None:
            try:
                embedder = get_embedder(meta["embedder"])
            except EmbeddingError as exc:
                log.warning("%s: %s; only the numeric index is usable", directory, exc)
                embedder = _UnavailableEmbedder(meta["embedder"], str(exc))
        elif embedder.name != meta["embedder"]:
            raise RetrievalError(f"{directory}: index built with embedder {meta['embedder']}, "
                                 f"not {embedder.name}; rebuild it")
        path = directory / "records.jsonl"
        try:
            with open(path, encoding="utf-8") as f:
                records = [RunRecord.model_validate_json(line) for line in f if line.strip()]
            numeric, path = _read_numeric(directory, meta)
        except (OSError, RuntimeError, ValidationError, ValueError) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise RetrievalError(f"{path}: cannot read the retrieval index: {reason}") from None
        pending = bool(meta.get("text_pending")) and bool(records)
        text_rows = [int(i) for i in meta.get("text_rows") or []] if pending else []
        if len(records) != meta.get("count") or numeric.shape != (len(records), 2 * _DIM):
            raise RetrievalError(f"{directory}: index files disagree on the record count; rebuild it")
        index = cls(embedder, FeatureScaler(meta["scaler"]["mean"], meta["scaler"]["std"]))
        index._records = records
        index._card_list = None
        index._positions = {r.run_id: i for i, r in enumerate(records)}
        index._numeric = numeric
        index._x = numeric[:, :_DIM].copy()
        index._text_pending = pending
        index._text_on_disk = (directory / "text.faiss", pending, text_rows, meta.get("text_dim"))
        index._hash = meta["data_hash"]
        index._directory = directory
        return index

    @classmethod
    def load_or_build(cls, records: Iterable[RunRecord], directory: str | Path | None = None, *,
                      embedder: Embedder | None = None, embed_text: bool = True) -> RunIndex:
        """The saved index in `directory` if it serves exactly `records` with this embedder;
        otherwise rebuilt (reusing the saved card embeddings that still apply) and saved.

        `embed_text=False` never waits for embeddings: a rebuilt index's text part stays pending
        (built and saved by the first `search_text`). With `embed_text=True` a loaded index whose
        text is pending is completed now.
        """
        records = list(records)
        directory = Path(directory) if directory is not None else default_dir()
        embedder = embedder or get_embedder()
        cards = [run_card(r) for r in records]
        reason = stale_reason(records, directory, embedder.name, cards=cards)
        if reason is None:
            try:
                loaded = cls.load(directory, embedder)
            except RetrievalError as exc:
                reason = str(exc)
            else:
                if embed_text:
                    loaded.build_text()
                return loaded
        log.info("rebuilding the retrieval index: %s", reason)
        cache: dict[str, np.ndarray] = {}
        meta = _read_meta(directory)
        if meta and meta.get("embedder") == embedder.name and meta.get("format_version") == FORMAT_VERSION:
            try:
                cache = cls.load(directory, embedder)._known_vectors()
            except RetrievalError as exc:
                log.info("old index not reusable: %s", exc)
        index = cls.build(records, embedder, embedding_cache=cache, embed_text=embed_text)
        index.save(directory)
        return index
