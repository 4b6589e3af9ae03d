"""Retrieval over run records: "which past experiments are most like this one".

`run_card` describes a run in one line; `get_embedder` embeds text; `RunIndex` holds a numeric
(meta-feature) and a text (card embedding) FAISS index over the same records.
"""

from knowledge.retrieval.cards import run_card
from knowledge.retrieval.embeddings import (
    Embedder,
    EmbeddingError,
    HashingEmbedder,
    MiniLMEmbedder,
    OllamaEmbedder,
    get_embedder,
)
from knowledge.retrieval.index import Hit, RetrievalError, RunIndex, default_dir, stale_reason

__all__ = [
    "Embedder",
    "EmbeddingError",
    "HashingEmbedder",
    "Hit",
    "MiniLMEmbedder",
    "OllamaEmbedder",
    "RetrievalError",
    "RunIndex",
    "default_dir",
    "get_embedder",
    "run_card",
    "stale_reason",
]
