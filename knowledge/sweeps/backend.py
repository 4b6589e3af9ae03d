"""What a sweep calls to load data and train: the real functions by default, fakes in tests.

A `Backend` travels to worker processes (spawn), so its fields must be picklable: top-level
functions, referenced by module and name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from knowledge.datasets.loader import load_dataset as load

if TYPE_CHECKING:
    from knowledge.datasets.base import ImageDataset
    from knowledge.runs.record import RunRecord


def load_dataset(spec: str) -> ImageDataset:
    """`knowledge.datasets.load_dataset(spec)` (imported on first use)."""
    return load(spec)


def train(dataset: ImageDataset, config: Any, **kwargs: Any) -> RunRecord:
    """`knowledge.training.train(dataset, config, **kwargs)` (imported on first use: torch is slow)."""
    from knowledge.training import train as run  # lazy: pulls in torch

    return run(dataset, config, **kwargs)


def pretrained_available(model: str) -> bool:
    """`knowledge.training.pretrained_available(model)`."""
    from knowledge.training import pretrained_available as available  # lazy: pulls in torch

    return bool(available(model))


@dataclass(frozen=True)
class Backend:
    """The three functions a sweep needs. `train` must accept the keyword arguments of
    `knowledge.training.train` and return a `RunRecord` (stored in `store` when given)."""

    load_dataset: Callable[[str], ImageDataset] = load_dataset
    train: Callable[..., RunRecord] = train
    pretrained_available: Callable[[str], bool] = pretrained_available


REAL = Backend()
