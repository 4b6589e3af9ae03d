"""Persistence of a `RunIndex`: the files of a saved index and its meta.json (`FORMAT_VERSION`,
`FILES`, `data_hash`, `stale_reason`, `default_dir`), and `save` / `load` / `load_or_build`
(`IndexStorage`, mixed into `RunIndex`)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import ValidationError

from knowledge import paths
from knowledge.retrieval.cards import run_card
from knowledge.retrieval.embeddings import Embedder, EmbeddingError, get_embedder
from knowledge.retrieval.hit import RetrievalError
from knowledge.retrieval.vectors import _DIM, FeatureScaler
from knowledge.runs.record import RunRecord

if TYPE_CHECKING:
    from knowledge.retrieval.index import RunIndex

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
FILES = ("meta.json", "records.jsonl", "numeric.faiss", "text.faiss")
NUMERIC_FILE = "numeric.npy"  # the record vectors for NumPy search (written since format 1)


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


class IndexStorage:
    """`save`, `load` and `load_or_build` of `RunIndex` (its state is set up in `RunIndex.__init__`)."""

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
