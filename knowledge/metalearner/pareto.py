"""The accuracy / time trade-off of ranked configs: the Pareto front and the fastest config within
a tolerance of the best."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from knowledge.errors import ConfigError

if TYPE_CHECKING:
    from knowledge.metalearner.ranking import RankedConfig


def pareto_positions(acc: np.ndarray, seconds: np.ndarray) -> list[int]:
    """Indices of the accuracy (higher) / time (lower) front, fastest first: `pareto_front` on
    arrays. NaN times are left out; if every time is NaN, the index of the most accurate."""
    acc, seconds = np.asarray(acc, dtype="float64"), np.asarray(seconds, dtype="float64")
    timed = np.flatnonzero(~np.isnan(seconds))
    if timed.size == 0:
        return [int(np.argmax(acc))] if acc.size else []
    order = timed[np.lexsort((-acc[timed], seconds[timed]))]
    running = np.maximum.accumulate(acc[order])
    previous = np.concatenate([[-np.inf], running[:-1]])
    return [int(i) for i in order[acc[order] > previous]]


def fastest_position(acc: np.ndarray, seconds: np.ndarray, pct: float) -> int:
    """Index of the fastest config within `pct` points of the most accurate: `fastest_within` on
    arrays (NaN times count as slowest; ties to the more accurate, then the first)."""
    acc, seconds = np.asarray(acc, dtype="float64"), np.asarray(seconds, dtype="float64")
    if acc.size == 0:
        raise ConfigError("no ranked configs to choose from")
    if pct < 0 or math.isnan(pct):
        raise ConfigError(f"the tolerance must be 0 or more percentage points, got {pct}")
    eligible = np.flatnonzero(acc >= acc.max() - pct / 100.0 - 1e-12)
    times = np.nan_to_num(seconds[eligible], nan=np.inf)
    return int(eligible[np.lexsort((-acc[eligible], times))[0]])


def _arrays(ranked: Sequence[RankedConfig]) -> tuple[np.ndarray, np.ndarray]:
    acc = np.array([r.predicted_acc for r in ranked], dtype="float64")
    seconds = np.array([np.nan if r.predicted_seconds is None else r.predicted_seconds
                        for r in ranked], dtype="float64")
    return acc, seconds


def pareto_front(ranked: Sequence[RankedConfig]) -> list[RankedConfig]:
    """The configs no other config beats on both accuracy (higher) and time (lower), fastest first.

    Configs without a predicted time are left out; if none has one, the most accurate is returned.
    """
    return [ranked[i] for i in pareto_positions(*_arrays(ranked))] if ranked else []


def fastest_within(ranked: Sequence[RankedConfig], pct: float) -> RankedConfig:
    """The fastest config whose predicted accuracy is within `pct` percentage points of the best
    (e.g. pct=1: at least best - 1 point). Configs without a time count as slowest."""
    if not ranked:
        raise ConfigError("no ranked configs to choose from")
    return ranked[fastest_position(*_arrays(ranked), pct)]
