"""Paired evidence: how a config did against the search space's default where both were run.

    result = paired(learner.support, challenger, reference, meta)
    result.shows_gain   # the records show the challenger better than the reference
    result.text()       # 'on the 6 most similar recorded datasets run both ways: +1.8 points
                        #  (± 0.6 s.e.), better on 5 of 6'

The meta-learner forecasts each config on its own; a practitioner compares a proposal with the
default they would have run. On the recorded datasets where both configs ran (exact configs;
several runs of one config on one dataset are averaged), the per-dataset accuracy differences of
the `K_NEAREST` datasets most similar to the user's (size, classes, modality: the distance of
`Evidence.dataset_distance`) are the evidence. They *show a gain* when there are at least
`MIN_DATASETS` of them and their mean minus `Z` standard errors is above zero; they *show a loss*
when there are at least two and their mean plus `Z` standard errors is below zero (worse on every
one of a few datasets is evidence enough against a config). Run-to-run noise
(seeds) and dataset-to-dataset spread both widen the standard error, so a config that wins big on
a few large sets and loses on small or seed-sensitive ones does not count as better.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from knowledge.metalearner.support import Evidence
    from knowledge.search_space import TrainConfig

K_NEAREST = 8
MIN_DATASETS = 3
Z = 1.0


@dataclass(frozen=True)
class Paired:
    """The paired comparison of `challenger` with `reference` (accuracies as fractions)."""

    challenger: TrainConfig
    reference: TrainConfig
    deltas: tuple[tuple[str, float], ...]  # (dataset, challenger - reference), most similar first

    @property
    def n(self) -> int:
        return len(self.deltas)

    @property
    def mean(self) -> float:
        return float(np.mean([d for _, d in self.deltas])) if self.deltas else math.nan

    @property
    def se(self) -> float:
        if self.n < 2:
            return math.nan
        return float(np.std([d for _, d in self.deltas], ddof=1) / math.sqrt(self.n))

    @property
    def lower(self) -> float:
        """The mean gain minus `Z` standard errors (NaN with fewer than two datasets)."""
        return self.mean - Z * self.se

    @property
    def wins(self) -> int:
        return sum(d > 0 for _, d in self.deltas)

    @property
    def shows_gain(self) -> bool:
        return self.n >= MIN_DATASETS and bool(self.lower > 0)

    @property
    def shows_loss(self) -> bool:
        """At least two datasets, and the mean loss beyond `Z` standard errors."""
        return self.n >= 2 and bool(self.mean + Z * self.se < 0)

    def text(self) -> str:
        """'on the 6 most similar recorded datasets run both ways: +1.8 points (± 0.6 s.e.), 5 of 6
        better' / 'never run both ways on the same dataset'."""
        if not self.deltas:
            return "never run both ways on the same dataset"
        spread = f" (± {100 * self.se:.1f} s.e.)" if self.n >= 2 else ""
        sets = "dataset" if self.n == 1 else "datasets"
        return (f"on the {self.n} most similar recorded {sets} run both ways: "
                f"{100 * self.mean:+.1f} points{spread}, better on {self.wins} of {self.n}")


def paired(evidence: Evidence, challenger: TrainConfig, reference: TrainConfig,
           meta: Any = None, k: int = K_NEAREST) -> Paired:
    """The paired comparison of two configs on the `k` recorded datasets most similar to `meta`'s
    (the user's MetaFeatures; without it, the first `k` by name) where both ran exactly."""
    a, b = evidence.config_index(challenger), evidence.config_index(reference)
    if a is None or b is None or not len(evidence):
        return Paired(challenger, reference, ())
    acc_a, acc_b = _per_dataset(evidence, a), _per_dataset(evidence, b)
    both = sorted(set(acc_a) & set(acc_b))
    if not both:
        return Paired(challenger, reference, ())
    runs = np.array([acc_a[d][1] for d in both], dtype=int)  # a run of each dataset: its traits
    order = np.lexsort((np.arange(len(both)), evidence.dataset_distance(runs, meta)))[:k]
    return Paired(challenger, reference,
                  tuple((both[i], acc_a[both[i]][0] - acc_b[both[i]][0]) for i in order))


def _per_dataset(evidence: Evidence, config: int) -> dict[str, tuple[float, int]]:
    """Per dataset, the mean accuracy of one recorded config and the index of one of its runs."""
    runs: dict[str, list[int]] = {}
    for j in np.flatnonzero(evidence.run_config == config):
        runs.setdefault(str(evidence.run_dataset[j]), []).append(int(j))
    return {d: (float(np.mean(evidence.run_acc[js])), js[0]) for d, js in runs.items()}
