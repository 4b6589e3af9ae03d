"""The candidate configs a ranking considers: the evidence-bounded portfolio (or the given
candidates) within the budget's constraints (CPU-only, pretrained only, resolution, device memory,
offline)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from knowledge.metalearner.candidates import candidate_configs, evidence_candidates
from knowledge.metalearner.extrapolation import EVIDENCE_CATEGORICAL, EVIDENCE_NUMERIC
from knowledge.metalearner.features import cached_per_list
from knowledge.metalearner.memory_fit import fit_to_memory
from knowledge.metalearner.support import filter_candidates
from knowledge.search_space import TrainConfig

if TYPE_CHECKING:
    from knowledge.metalearner.budget import Budget
    from knowledge.metalearner.model import MetaLearner


def _config_columns(configs: Sequence[TrainConfig]) -> dict[str, np.ndarray]:
    """The `cfg.*` fields the evidence check reads, as arrays (cached per candidate list)."""
    def build(items: tuple[TrainConfig, ...]) -> dict[str, np.ndarray]:
        names = (*EVIDENCE_CATEGORICAL, *EVIDENCE_NUMERIC)
        dumped = [c.model_dump(include=set(names)) for c in items]
        return {f"cfg.{n}": np.array([d[n] for d in dumped], dtype=object) for n in names}

    return cached_per_list(configs, "config_columns", build)


def runnable_offline(configs: Sequence[TrainConfig]) -> list[TrainConfig]:
    """The configs that train without internet: from scratch, or pretrained weights already on
    this machine (`knowledge.training.weights.pretrained_available`; imports torch and timm)."""
    if not any(c.pretrained for c in configs):
        return list(configs)
    from knowledge.training.weights import pretrained_available  # lazy: knowledge.training pulls in torch

    have = {m: pretrained_available(m) for m in {c.model for c in configs if c.pretrained}}
    return [c for c in configs if not c.pretrained or have[c.model]]


def _constrained(candidates: Sequence[TrainConfig] | None, budget: Budget | None,
                 pretrained_only: bool, max_resolution: int | None,
                 learner: MetaLearner) -> tuple[list[TrainConfig], dict[str, int]]:
    """The candidates within the constraints, and per candidate whose batch was shrunk to fit the
    device's memory (GPU / Apple budgets, `memory.fit_to_memory`) its original batch size."""
    chosen = _constrained_by_space(candidates, budget, pretrained_only, max_resolution, learner)
    shrunk_from: dict[str, int] = {}
    if budget is not None and not budget.cpu_only:
        chosen, shrunk_from = fit_to_memory(chosen, budget.device)
    return (runnable_offline(chosen) if budget is not None and budget.offline else chosen), shrunk_from


def _constrained_by_space(candidates: Sequence[TrainConfig] | None, budget: Budget | None,
                          pretrained_only: bool, max_resolution: int | None,
                          learner: MetaLearner) -> list[TrainConfig]:
    if candidates is None:
        cpu_only = bool(budget and budget.cpu_only)
        found = evidence_candidates(learner.support, cpu_only=cpu_only,
                                    pretrained_only=pretrained_only, max_resolution=max_resolution)
        if found:
            return found
        # no portfolio in the evidence (a learner without its runs, or too few datasets)
        return candidate_configs(cpu_only=cpu_only, pretrained_only=pretrained_only,
                                 max_resolution=max_resolution)
    return filter_candidates(candidates, cpu_only=bool(budget and budget.cpu_only),
                             pretrained_only=pretrained_only, max_resolution=max_resolution)
