"""Rank candidate configs for a dataset by predicted accuracy, within a compute budget.

    learner = load_or_fit()
    top = rank(meta, learner, top_k=5, budget=parse_budget("one hour on a T4"))
    everything = rank(meta, learner, top_k=None, budget=...)
    pareto_front(everything)             # accuracy vs time, non-dominated, fastest first
    fastest_within(everything, 1.0)      # fastest config within 1 point of the best

Predicted training time = seconds per image-epoch (CPU) x n_instances x epochs / device speed-up
(`budget.DEVICE_SPEEDUP`, rough public ratios). Everything is one vectorised featurize + predict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from knowledge.errors import ConfigError, DatasetError
from knowledge.metafeatures import MetaFeatures
from knowledge.metalearner.budget import Budget, format_seconds
from knowledge.metalearner.candidates import candidate_configs
from knowledge.metalearner.features import config_frame, featurize
from knowledge.metalearner.model import MetaLearner
from knowledge.search_space import TrainConfig


class RankedConfig(BaseModel):
    """One recommended config with its predictions (accuracies are fractions in [0, 1])."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    config: TrainConfig
    predicted_acc: float = Field(description="median predicted test accuracy")
    acc_lo: float = Field(description="lower end of the (calibrated) 80 % interval")
    acc_hi: float = Field(description="upper end of the (calibrated) 80 % interval")
    predicted_seconds: float | None = Field(
        None, description="predicted training time on `device`; None when n_instances is unknown")
    time_is_estimate: bool = Field(
        True, description="True when this model was never timed here (FLOPs-proxy prior only)")
    device: str = "cpu"
    extrapolated: list[str] = Field(
        default_factory=list,
        description="config fields outside the training evidence (value never seen / out of range)")
    rank: int = Field(ge=1)

    def summary(self) -> str:
        """'1. ResNet-18 (pretrained, end_to_end, 64 px, lr 1e-03, 10 ep): 91.2 % [85.0-95.1], ~4 min'."""
        c = self.config
        time = format_seconds(self.predicted_seconds) + (" (rough)" if self.time_is_estimate else "")
        beyond = f"; beyond evidence: {', '.join(self.extrapolated)}" if self.extrapolated else ""
        return (
            f"{self.rank}. {c.spec.label} ({'pretrained' if c.pretrained else 'scratch'}, {c.scheme}, "
            f"{c.resolution} px, lr {c.lr:.0e}, {c.epochs} ep): {100 * self.predicted_acc:.1f} % "
            f"[{100 * self.acc_lo:.1f}-{100 * self.acc_hi:.1f}], ~{time} on {self.device}{beyond}"
        )


def rank(
    meta: MetaFeatures,
    learner: MetaLearner,
    *,
    top_k: int | None = 5,
    budget: Budget | None = None,
    candidates: Sequence[TrainConfig] | None = None,
    pretrained_only: bool = False,
    max_resolution: int | None = None,
    supported_only: bool = False,
) -> list[RankedConfig]:
    """The `top_k` candidates (all when None) by predicted accuracy.

    Ties (equal predicted accuracy, common where the evidence never varied a field) are broken by
    fewer extrapolated fields (`RankedConfig.extrapolated`), then by shorter time. `supported_only`
    drops every config that extrapolates beyond the training evidence.

    Without `candidates`, `candidate_configs` is used (CPU-only budget -> cpu_friendly models).
    With a time limit, configs predicted to take longer are removed; DatasetError when the limit
    cannot be applied because `meta.n_instances` is unknown, ConfigError when nothing fits.
    """
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}")
    device = budget.device if budget else "cpu"
    if candidates is None:
        candidates = candidate_configs(cpu_only=bool(budget and budget.cpu_only),
                                       pretrained_only=pretrained_only,
                                       max_resolution=max_resolution)
    else:
        candidates = [
            c for c in candidates
            if (not pretrained_only or c.pretrained)
            and (max_resolution is None or c.resolution <= max_resolution)
            and (not (budget and budget.cpu_only) or c.spec.cpu_friendly)
        ]
    if not candidates:
        raise ConfigError("no candidate config satisfies the constraints")
    flat = config_frame(meta, list(candidates))
    pred = learner.predict(featurize(flat))
    extrapolated = learner.extrapolated(flat)
    n_extrapolated = np.fromiter(map(len, extrapolated), dtype="float64", count=len(candidates))
    epochs = np.fromiter((c.epochs for c in candidates), dtype="float64", count=len(candidates))
    n = float(meta.n_instances) if meta.n_instances is not None else math.nan
    seconds = pred["sec_per_img_epoch"].to_numpy() * n * epochs / (budget.speedup if budget else 1.0)
    keep = (n_extrapolated == 0) if supported_only else np.ones(len(candidates), dtype=bool)
    if not keep.any():
        raise ConfigError("no candidate config lies within the training evidence; "
                          "allow extrapolation or add runs")
    if budget is not None and budget.max_seconds is not None:
        if meta.n_instances is None:
            raise DatasetError("a time budget needs the number of training images (n_instances); "
                               "state it or drop the time limit")
        fits = seconds <= budget.max_seconds
        if not (keep & fits).any():
            raise ConfigError(
                f"no candidate config is predicted to train within {budget.describe()}; the "
                f"fastest needs about {format_seconds(float(np.nanmin(seconds[keep])))}"
            )
        keep &= fits
    acc = pred["acc"].to_numpy()
    idx = np.flatnonzero(keep)
    # Highest accuracy first; among equals the better supported, then the faster (NaN time last).
    order = idx[np.lexsort((np.nan_to_num(seconds[idx], nan=np.inf), n_extrapolated[idx],
                            -np.round(acc[idx], 6)))]
    if top_k is not None:
        order = order[:top_k]
    lo, hi = pred["acc_lo"].to_numpy(), pred["acc_hi"].to_numpy()
    estimate = pred["time_is_estimate"].to_numpy()
    return [
        RankedConfig(
            config=candidates[i],
            predicted_acc=float(acc[i]),
            acc_lo=float(lo[i]),
            acc_hi=float(hi[i]),
            predicted_seconds=None if math.isnan(seconds[i]) else float(seconds[i]),
            time_is_estimate=bool(estimate[i]),
            device=device,
            extrapolated=extrapolated[i],
            rank=r,
        )
        for r, i in enumerate(order, start=1)
    ]


def pareto_front(ranked: Sequence[RankedConfig]) -> list[RankedConfig]:
    """The configs no other config beats on both accuracy (higher) and time (lower), fastest first.

    Configs without a predicted time are left out; if none has one, the most accurate is returned.
    """
    timed = [r for r in ranked if r.predicted_seconds is not None]
    if not timed:
        return [max(ranked, key=lambda r: r.predicted_acc)] if ranked else []
    front: list[RankedConfig] = []
    best = -math.inf
    for r in sorted(timed, key=lambda r: (r.predicted_seconds, -r.predicted_acc)):
        if r.predicted_acc > best:
            front.append(r)
            best = r.predicted_acc
    return front


def fastest_within(ranked: Sequence[RankedConfig], pct: float) -> RankedConfig:
    """The fastest config whose predicted accuracy is within `pct` percentage points of the best
    (e.g. pct=1: at least best - 1 point). Configs without a time count as slowest."""
    if not ranked:
        raise ConfigError("no ranked configs to choose from")
    if pct < 0 or math.isnan(pct):
        raise ConfigError(f"the tolerance must be 0 or more percentage points, got {pct}")
    best = max(r.predicted_acc for r in ranked)
    eligible = [r for r in ranked if r.predicted_acc >= best - pct / 100.0 - 1e-12]
    return min(eligible, key=lambda r: (
        math.inf if r.predicted_seconds is None else r.predicted_seconds, -r.predicted_acc))
