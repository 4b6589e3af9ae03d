"""The text index of a `RunIndex` (`TextIndex`, mixed into it): the run cards embedded by an
`Embedder`, searched by cosine similarity (`search_text`). It may be read from disk only when first
needed, or be *pending* (`text_pending`): its cards are then embedded by the first `search_text`
(or `build_text()`), reusing the vectors already computed, and written back to the index's
directory."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping

import numpy as np

from knowledge.retrieval.embeddings import EmbeddingError
from knowledge.retrieval.hit import Hit, RetrievalError
from knowledge.retrieval.ranking import _TOLERANCE
from knowledge.retrieval.storage import _read_meta

log = logging.getLogger(__name__)


class TextIndex:
    """The text half of `RunIndex` (its state is set up in `RunIndex.__init__`)."""

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

    def _text_search(self, vector: np.ndarray, fetch: int,
                     allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        import faiss

        params = None if allowed is None else faiss.SearchParameters(
            sel=faiss.IDSelectorBatch(allowed))
        return self._text.search(vector, fetch, params=params)
