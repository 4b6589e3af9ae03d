"""What a retrieval search returns (`Hit`, one run) or raises (`RetrievalError`)."""

from __future__ import annotations

from pydantic import BaseModel

from knowledge.errors import MetaLLMiXError


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
