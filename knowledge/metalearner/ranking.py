"""Rank candidate configs for a dataset by predicted accuracy, within a compute budget.

    learner = load_or_fit()
    top = rank(meta, learner, top_k=5, budget=parse_budget("one hour on a T4"))
    everything = rank(meta, learner, top_k=None, budget=...)
    pareto_front(everything)             # accuracy vs time, non-dominated, fastest first
    fastest_within(everything, 1.0)      # fastest config within 1 point of the best

Configs are ordered by the meta-learner's ranking score (a blend of the predicted accuracy and a
pairwise ranker chosen by cross-validation, `knowledge.metalearner.blend`); `predicted_acc` is the
accuracy model's median, so the top-ranked config need not have the highest predicted accuracy.
Predicted training time on a CPU = seconds per image-epoch (learned from our CPU-timed runs) x
n_instances x epochs; on a GPU / Apple device the timm-benchmark cost model (`cost`: images seen /
throughput at the resolution x device ratio + overhead), and CPU time / `budget.DEVICE_SPEEDUP`
only for models without a benchmark row (`RankedConfig.time_source` says which). Everything is
one vectorised predict over a cached feature matrix (`features.candidate_matrix`); accuracy
intervals are computed only for the configs returned (`Scored.ranked`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from knowledge.errors import ConfigError, DatasetError
from knowledge.metafeatures import MetaFeatures
from knowledge.metalearner.budget import Budget, cpu_threads_default, format_seconds
from knowledge.metalearner.constraints import (  # noqa: F401  (re-exported)
    _config_columns,
    _constrained,
    _constrained_by_space,
    runnable_offline,
)
from knowledge.metalearner.cost import device_seconds
from knowledge.metalearner.extrapolation import flag_names
from knowledge.metalearner.features import candidate_matrix
from knowledge.metalearner.model import MetaLearner
from knowledge.metalearner.support import MIN_RUNS, Support
from knowledge.search_space import TrainConfig, is_published_protocol


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
    time_source: str | None = Field(
        None, description="where predicted_seconds came from, e.g. 'timm RTX 3090 train benchmark "
                          "(vgg16 @224) x NVIDIA T4 ratio 0.28 (public figure, not measured here)' (`cost`)")
    batch_shrunk_from: int | None = Field(
        None, description="the batch size before it was halved to fit the device's memory (`memory`)")
    extrapolated: list[str] = Field(
        default_factory=list,
        description="config fields outside the training evidence (value never seen / out of range)")
    rank: int = Field(ge=1)
    score: float | None = Field(
        None, description="the ranking score the order comes from (higher is better; a blend of "
                          "the predicted accuracy and a pairwise ranker, see MetaLearner)")
    support: Support | None = Field(
        None, description="the recorded runs that back this config (None: the learner carries no "
                          "evidence, e.g. an old artifact)")

    @property
    def supported(self) -> bool:
        return self.support is not None and self.support.supported

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


@dataclass
class Scored:
    """Every candidate config of one dataset with its predictions, ranked (see `score`).

    Arrays are per candidate; `order` holds the candidates kept by the budget / evidence
    constraints, best first. `ranked(positions)` builds the `RankedConfig`s of some candidates
    (with their accuracy intervals, computed only for those)."""

    meta: MetaFeatures
    learner: MetaLearner
    candidates: list[TrainConfig]
    matrix: np.ndarray
    acc: np.ndarray
    score: np.ndarray
    seconds: np.ndarray
    time_is_estimate: np.ndarray
    flag_fields: list[str]  # the evidence fields checked
    flags: np.ndarray  # (candidates, fields) bool: the value lies outside the evidence
    order: np.ndarray
    device: str
    speedup: float
    has_times: bool = True  # False: `seconds` not predicted yet (`times=False`)
    keep: np.ndarray | None = None  # candidates within the constraints
    eligible: np.ndarray | None = None  # ... apart from the time limit
    supported: np.ndarray | None = None  # backed by recorded runs (`support`)
    n_devices: int = 1
    time_sources: list[str] | None = None  # per candidate, where `seconds` came from (`cost`)
    shrunk_from: dict[str, int] | None = None  # config key -> batch size before the memory fit
    threads: int | None = None  # the CPU threads training uses (`Budget.cpu_threads`)

    @property
    def supported_fits(self) -> bool:
        """Whether some supported candidate is within the constraints (and the time limit)."""
        keep = self.keep if self.keep is not None else np.ones(len(self.acc), dtype=bool)
        return bool(self.supported is not None and (keep & self.supported).any())

    @property
    def n_extrapolated(self) -> np.ndarray:
        return self.flags.sum(axis=1).astype("float64")

    def extrapolated(self, position: int) -> list[str]:
        """The fields of candidate `position` outside the training evidence."""
        return flag_names(self.flag_fields, self.flags, [position])[0]

    def by_accuracy(self, *, time_limit: bool = True) -> np.ndarray:
        """The kept candidates by predicted accuracy (highest first), same tie rules as `order`;
        `time_limit=False` also those only the time limit removed."""
        keep = self.keep if self.keep is not None else np.isin(np.arange(len(self.acc)), self.order)
        if not time_limit and self.eligible is not None:
            keep = self.eligible
        return _order(self.acc, keep, self.n_extrapolated, self.seconds, self.supported)

    def ranked(self, positions: Sequence[int]) -> list[RankedConfig]:
        """RankedConfigs of the candidates at `positions` (indices into `candidates`), ranked by
        their place in `order` (1 = best)."""
        positions = [int(p) for p in positions]
        if not positions:
            return []
        place = {int(p): r for r, p in enumerate(self.order, start=1)}
        sub = self.matrix[positions]
        configs = [self.candidates[p] for p in positions]
        pred = self.learner.predict_matrix(sub, intervals=True, cost=False, score=False,
                                           margins=self.learner.margins_for(configs))
        seconds = self.seconds[positions]
        sources = ([self.time_sources[p] for p in positions] if self.time_sources is not None
                   else [None] * len(positions))
        if not self.has_times:
            seconds, sources = _seconds(self.learner, sub, self.meta, self.candidates, positions,
                                        self.speedup, self.device, self.n_devices, self.threads)
        return [
            RankedConfig(
                config=self.candidates[p],
                predicted_acc=float(self.acc[p]),
                acc_lo=float(pred["acc_lo"][j]),
                acc_hi=float(pred["acc_hi"][j]),
                predicted_seconds=None if math.isnan(seconds[j]) else float(seconds[j]),
                time_is_estimate=bool(self.time_is_estimate[p]),
                device=self.device,
                time_source=sources[j],
                batch_shrunk_from=(self.shrunk_from or {}).get(self.candidates[p].key()),
                extrapolated=self.extrapolated(p),
                rank=place.get(p, len(self.order) + 1),
                score=None if math.isnan(self.score[p]) else float(self.score[p]),
                support=(self.learner.support.support(self.candidates[p], self.meta)
                         if len(self.learner.support) else None),
            )
            for j, p in enumerate(positions)
        ]


def _seconds(learner: MetaLearner, matrix: np.ndarray, meta: MetaFeatures,
             candidates: Sequence[TrainConfig], positions: Sequence[int], speedup: float,
             device: str = "cpu", n_devices: int = 1, threads: int | None = None
             ) -> tuple[np.ndarray, list[str]]:
    """Predicted training seconds and their sources: on a CPU, per image-epoch (CPU, on `threads`)
    x n_instances x epochs / speed-up; on a GPU the timm-benchmark cost model (`cost`)."""
    per = learner.predict_matrix(matrix, intervals=False, cost=True,
                                 threads=threads)["sec_per_img_epoch"]
    epochs = np.fromiter((candidates[p].epochs for p in positions), dtype="float64",
                         count=len(positions))
    n = float(meta.n_instances) if meta.n_instances is not None else math.nan
    return device_seconds([candidates[p] for p in positions], meta.n_instances, device,
                          per * n * epochs / speedup, speedup, n_devices)


def score_candidates(
    meta: MetaFeatures,
    learner: MetaLearner,
    *,
    budget: Budget | None = None,
    candidates: Sequence[TrainConfig] | None = None,
    pretrained_only: bool = False,
    max_resolution: int | None = None,
    supported_only: bool = False,
    order_by: str = "score",
    times: bool = True,
) -> Scored:
    """Predict every candidate config (as `rank`, which documents the arguments) and order them.

    `times=False` skips the training-time model (only allowed without a time limit); the times of
    the configs later passed to `Scored.ranked` are then predicted there.
    """
    if order_by not in ("score", "acc"):
        raise ConfigError(f"order_by must be 'score' or 'acc', got {order_by!r}")
    device = budget.device if budget else "cpu"
    speedup = budget.speedup if budget else 1.0
    threads = budget.cpu_threads if budget else cpu_threads_default()
    chosen, shrunk_from = _constrained(candidates, budget, pretrained_only, max_resolution, learner)
    if not chosen:
        raise ConfigError("no candidate config satisfies the constraints")
    limited = budget is not None and budget.max_seconds is not None
    matrix = candidate_matrix(meta, chosen)
    pred = learner.predict_matrix(matrix, intervals=False, cost=times or limited,
                                  score=order_by == "score", threads=threads)
    flag_fields, flags = learner.extrapolation_flags(_config_columns(chosen))
    n_extrapolated = flags.sum(axis=1).astype("float64")
    epochs = np.fromiter((c.epochs for c in chosen), dtype="float64", count=len(chosen))
    n = float(meta.n_instances) if meta.n_instances is not None else math.nan
    seconds = pred["sec_per_img_epoch"] * n * epochs / speedup
    n_devices = int(getattr(budget, "n_devices", 1) or 1) if budget else 1
    sources = None
    if times or limited:  # a GPU / Apple device: the timm-benchmark cost model (`cost`)
        seconds, sources = device_seconds(chosen, meta.n_instances, device, seconds, speedup,
                                          n_devices)
    evidence = learner.support
    n_backing, largest = (evidence.backing(chosen) if len(evidence)
                          else (np.zeros(len(chosen), dtype=int), np.full(len(chosen), np.nan)))
    supported = n_backing >= MIN_RUNS
    keep = (n_extrapolated == 0) if supported_only else np.ones(len(chosen), dtype=bool)
    if not keep.any():
        raise ConfigError("no candidate config lies within the training evidence; "
                          "allow extrapolation or add runs")
    eligible = keep.copy()
    if limited:
        if meta.n_instances is None:
            raise DatasetError("a time budget needs the number of training images (n_instances); "
                               "state it or drop the time limit")
        fits = seconds <= budget.max_seconds  # type: ignore[union-attr,operator]
        if not (keep & fits).any():
            raise ConfigError(
                f"no candidate config is predicted to train within {budget.describe()}; the "  # type: ignore[union-attr]
                f"fastest needs about {format_seconds(float(np.nanmin(seconds[keep])))}"
            )
        keep &= fits
    key = pred["score"] if order_by == "score" else pred["acc"]
    setups = (np.array([is_published_protocol(c) for c in chosen], dtype=bool)
              if order_by == "score" else None)
    level = supported.astype("float64")
    if len(evidence):  # backed and on data of about the user's size first (`covers_size`)
        level += supported & evidence.covers_size(chosen, meta.n_instances, largest)
    leaders = (_setup_leaders(learner, matrix, chosen, keep, level, setups, pred["acc"])
               if setups is not None else None)
    order = _order(key, keep, n_extrapolated, seconds, level, leaders)
    return Scored(meta=meta, learner=learner, candidates=chosen, matrix=matrix, acc=pred["acc"],
                  score=pred["score"], seconds=seconds, time_is_estimate=pred["time_is_estimate"],
                  flag_fields=flag_fields, flags=flags, order=order, device=device, speedup=speedup,
                  has_times=times or limited, keep=keep, eligible=eligible, supported=supported,
                  n_devices=n_devices, time_sources=sources, shrunk_from=shrunk_from, threads=threads)


SETUP_LEADERS = 5  # per training setup, the configs whose interval is computed to compare setups


def _setup_leaders(learner: MetaLearner, matrix: np.ndarray, chosen: Sequence[TrainConfig],
                   keep: np.ndarray, supported: np.ndarray, setups: np.ndarray,
                   acc: np.ndarray) -> np.ndarray | None:
    """Per candidate, the value its training setup is compared by (None with only one setup):
    the highest midpoint of the forecast and the lower end of its 80 % interval among the setup's
    `SETUP_LEADERS` best-supported configs with the highest predicted accuracy.

    Why setups: the pairwise ranker only ever compared configs recorded on the same task, and no
    task has runs of both setups (100-epoch GPU runs of the published protocol vs short CPU runs),
    so its scores say nothing about one setup against the other. Why not the forecast alone: the
    accuracy model has never seen the two setups on one dataset either, so the comparison is the
    least evidenced one the ranking makes; it is made on a pessimistic forecast, which also carries
    how well each setup's configs are backed (less support, wider interval, lower end). Why not the
    lower end alone (the rule until issue 17): it let a setup forecast up to 15 points lower win on
    a narrower interval (a 64-px scratch run at 72 % over the 224-px pretrained protocol at 88 %),
    and the midpoint gave the same leave-one-dataset-out regret (docs/BENCHMARKS.md).
    Within a setup the interval is never used.
    """
    idx = np.flatnonzero(keep)
    values = np.unique(setups[idx])
    if values.size < 2:
        return None
    leader = np.full(len(chosen), -np.inf)
    for value in values:
        members = idx[setups[idx] == value]
        best = supported[members].max()
        members = members[supported[members] == best]
        top = members[np.argsort(-acc[members], kind="stable")[:SETUP_LEADERS]]
        configs = [chosen[i] for i in top]
        pred = learner.predict_matrix(matrix[top], intervals=True, cost=False, score=False,
                                      margins=learner.margins_for(configs))
        leader[setups == value] = float(np.max((pred["acc"] + pred["acc_lo"]) / 2))
    return leader


def _order(key: np.ndarray, keep: np.ndarray, n_extrapolated: np.ndarray,
           seconds: np.ndarray, supported: np.ndarray | None = None,
           leaders: np.ndarray | None = None) -> np.ndarray:
    """Kept indices: supported candidates before unsupported ones (`supported`: a bool, or a
    level, highest first: 2 backed on data of about the user's size, 1 backed, 0 not); then, with
    `leaders` (per candidate: the value of its training setup, `_setup_leaders`), the setup with
    the highest value first; then the highest key; among equals the fewer extrapolated fields,
    then the faster (NaN time last)."""
    idx = np.flatnonzero(keep)
    backed = (np.zeros(idx.size) if supported is None
              else -np.asarray(supported, dtype="float64")[idx])
    group = np.zeros(idx.size) if leaders is None else -np.round(leaders[idx], 6)
    return idx[np.lexsort((np.nan_to_num(seconds[idx], nan=np.inf), n_extrapolated[idx],
                           -np.round(key[idx], 6), group, backed))]


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
    order_by: str = "score",
) -> list[RankedConfig]:
    """The `top_k` candidates (all when None), best first.

    Order: the meta-learner's ranking score (`MetaLearner.predict`'s `score`, a blend of the
    predicted accuracy and a pairwise ranker), or the predicted accuracy with `order_by="acc"`.
    Ties (common where the evidence never varied a field) are broken by fewer extrapolated fields
    (`RankedConfig.extrapolated`), then by shorter time. `supported_only` drops every config that
    extrapolates beyond the training evidence.

    Without `candidates`, `candidate_configs` is used (CPU-only budget -> cpu_friendly models).
    With a time limit, configs predicted to take longer are removed; DatasetError when the limit
    cannot be applied because `meta.n_instances` is unknown, ConfigError when nothing fits.
    """
    if top_k is not None and top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}")
    scored = score_candidates(meta, learner, budget=budget, candidates=candidates,
                              pretrained_only=pretrained_only, max_resolution=max_resolution,
                              supported_only=supported_only, order_by=order_by)
    order = scored.order if top_k is None else scored.order[:top_k]
    return scored.ranked(order)


# The accuracy / time trade-off lives in `pareto`; re-exported for old imports.
from knowledge.metalearner.pareto import (  # noqa: E402,F401
    _arrays,
    fastest_position,
    fastest_within,
    pareto_front,
    pareto_positions,
)
