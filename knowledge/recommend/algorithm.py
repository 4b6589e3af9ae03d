"""How one recommendation is made from a fitted meta-learner and a retrieval index: rank the
candidates tier by tier of evidence (recorded, shortened, the free sample), pick the best, the
faster and the more accurate alternatives and the Pareto front, add the notes, the SHAP
explanation and the similar runs (`_recommend`; `recommend` in `cache` is the entry point)."""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from knowledge.errors import ConfigError
from knowledge.explain import explain
from knowledge.metafeatures import MetaFeatures
from knowledge.metalearner.artifact import FORMAT_VERSION
from knowledge.metalearner.budget import Budget, parse_budget
from knowledge.metalearner.candidates import candidate_configs, evidence_candidates
from knowledge.metalearner.memory import memory_line
from knowledge.metalearner.model import definition_fingerprint
from knowledge.metalearner.ranking import (
    RankedConfig,
    Scored,
    pareto_positions,
    score_candidates,
)
from knowledge.metalearner.support import MIN_RUNS, RATIO
from knowledge.recommend.anchor import anchor
from knowledge.recommend.require import check_require, restrict
from knowledge.recommend.result import FASTER_WITHIN_POINTS, Recommendation
from knowledge.recommend.text import _pct, _time, budget_text_of, config_label
from knowledge.recommend.traits import outside_ranges, range_note, recorded_ranges
from knowledge.retrieval.index import RetrievalError

if TYPE_CHECKING:
    from knowledge.metalearner.model import MetaLearner
    from knowledge.metalearner.support import Evidence
    from knowledge.retrieval.index import RunIndex
    from knowledge.search_space import TrainConfig

SIMILAR_K = 5
RANK_BY = "score"  # what orders the candidates: "score" (accuracy blended with the ranker) or "acc"
_ACC_EPS = 1e-6  # predicted accuracies closer than this count as equal
# names the rules that turn the ranking into a pick (`anchor`, `_cut_to_fit`): benchmark plans made
# under other rules are made again (eval/e2e/timematch.py)
ADVISOR_RULES = "anchor-default-v2+cut-to-fit-v1"  # v2: a loss shown on 2+ datasets moves too


def advisor_fingerprint() -> str:
    """The meta-learner's definition and the advisor's rules, in one short key."""
    return f"{definition_fingerprint()}+{ADVISOR_RULES}"


def _learner_info(learner: MetaLearner) -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "fitted_at": learner.fitted_at,
        "n_records": dict(learner.n_records),
        "n_timed": learner.n_timed,
        "interval_margin_points": round(100 * learner.interval_margin, 2),
        "has_cost_model": learner.has_model("cost"),
        "ranking_blend": learner.blend,
    }


def _recommend(meta: MetaFeatures, learner: MetaLearner, index: RunIndex, *,
               learner_info: dict[str, Any], top_k: int, budget: Budget | str | None,
               exclude_base: Iterable[str] | None, supported_only: bool, similar_k: int,
               dataset: str | None, started: float,
               require: dict[str, Any] | None = None) -> Recommendation:
    if top_k < 1:
        raise ConfigError(f"top_k must be at least 1, got {top_k}")
    if isinstance(budget, str):
        budget = parse_budget(budget)
    require = check_require(require)
    scored, tier, nearest = _score_by_evidence(meta, learner, budget, supported_only, require)
    was = int(scored.order[0]) if len(scored.order) else None
    scored.order, anchored = anchor(scored, learner.support, meta)  # the default as the anchor
    if tier != "extrapolated" and was is not None and int(scored.order[0]) != was:
        recorded = learner.support.config_index(scored.candidates[int(scored.order[0])]) is not None
        tier = "recorded" if recorded else "shortened"  # the pick moved
    order = scored.order  # every candidate within the budget, best-ranked first
    faster_pos = _faster_position(scored, order)
    pareto_pos = [int(order[i]) for i in pareto_positions(scored.acc[order], scored.seconds[order])]
    top_pos = [int(p) for p in order[:top_k]]
    runner_up_pos = next((int(p) for p in order[1:] if int(p) != faster_pos), None)
    wanted = list(dict.fromkeys([*top_pos, *([faster_pos] if faster_pos is not None else []), *pareto_pos]
                                + ([runner_up_pos] if runner_up_pos is not None else [])))
    built = dict(zip(wanted, scored.ranked(wanted)))
    best, top = built[top_pos[0]], [built[p] for p in top_pos]
    notes: list[str] = list(anchored)
    outside = outside_ranges(meta, recorded_ranges(index))
    if note := range_note(meta, outside):
        notes.append(note)
    if not best.supported:
        notes.append(_extrapolation_note(budget, nearest))
    elif tier == "shortened":
        notes.append(f"to fit {budget_text_of(budget)}, the pick trains fewer epochs than the "
                     "recorded runs it comes from (still within 3x of them): its forecast for the "
                     "shorter schedule is the meta-learner's")

    faster: RankedConfig | None = built[faster_pos] if faster_pos is not None else None
    if best.predicted_seconds is None:
        notes.append("training times are not predicted: state the number of training images "
                     "(n_instances)")

    # More accurate: the highest predicted accuracy when the budget is ignored (every model, no
    # time limit); the ranking may put a config below the best although its predicted accuracy
    # is higher ('ranked_lower'), else the next-ranked config is the runner-up.
    more_accurate, kind, within = _more_accurate(meta, learner, scored, budget, best, built,
                                                 runner_up_pos, supported_only, require)
    extrapolated = sorted({f for r in top for f in r.extrapolated})
    if extrapolated and tier == "extrapolated":
        notes.append(f"some top configs lie beyond the training evidence in: {', '.join(extrapolated)} "
                     "(predictions there are extrapolations)")
    from_timm = bool(best.time_source and best.time_source.startswith("timm"))
    if best.time_is_estimate and best.predicted_seconds is not None and not from_timm:
        notes.append(f"{best.config.spec.label} was never timed here: its time is a rough "
                     "FLOPs-based estimate")
    if budget is not None and not budget.cpu_only:
        notes.append("GPU times come from timm's published training throughput scaled to the "
                     "device (not measured here)" if from_timm else
                     "GPU times are CPU timings divided by rough public speed-up factors")

    excluded = sorted({b.lower() for b in (exclude_base or ())})
    try:
        similar = index.similar_runs(meta, k=similar_k, dedupe_datasets=True, exclude_base=excluded)
    except RetrievalError as exc:
        similar = []
        notes.append(f"no similar runs: {exc}")

    return Recommendation(
        dataset=dataset,
        meta_features=meta,
        missing_traits=meta.missing(),
        budget=budget,
        best=best,
        top=top,
        faster=faster,
        more_accurate=more_accurate,
        more_accurate_kind=kind,
        more_accurate_within_budget=None if more_accurate is None else within,
        pareto=[built[p] for p in pareto_pos],
        n_candidates=len(order),
        evidence_tier=tier,
        pretrained_vs_scratch=learner.support.pretrained_vs_scratch(best.config),
        supported_fits=scored.supported_fits,
        nearest_supported=nearest,
        explanation=explain(learner, meta, best.config),
        similar_runs=similar,
        excluded=excluded,
        notes=notes,
        memory=_memory_line(best, budget),
        outside_range=outside,
        learner=learner_info,
        seconds=round(time.perf_counter() - started, 4),
    )


def _memory_line(best: RankedConfig, budget: Budget | None) -> str | None:
    """The card's memory line for a GPU / Apple budget (`memory.memory_line`), else None."""
    if budget is None or budget.cpu_only:
        return None
    return memory_line(best.config, budget.device, best.batch_shrunk_from)


def _faster_position(scored: Scored, order: np.ndarray) -> int | None:
    """The faster alternative: the fastest config ranked below the pick whose predicted accuracy
    is at most `FASTER_WITHIN_POINTS` below the pick's and not above it (a config forecast more
    accurate than the pick is the 'more accurate' alternative, never the 'faster' one)."""
    if len(order) < 2:
        return None
    best = int(order[0])
    acc, seconds = scored.acc, np.nan_to_num(scored.seconds, nan=np.inf)
    if not np.isfinite(seconds[best]):
        return None
    rest = np.asarray(order[1:], dtype=int)
    ok = rest[(acc[rest] >= acc[best] - FASTER_WITHIN_POINTS / 100.0 - _ACC_EPS)
              & (acc[rest] <= acc[best] + _ACC_EPS) & (seconds[rest] < seconds[best])]
    if ok.size == 0:
        return None
    return int(ok[np.lexsort((-acc[ok], seconds[ok]))[0]])


def _score_by_evidence(meta: MetaFeatures, learner: MetaLearner, budget: Budget | None,
                       supported_only: bool, require: dict[str, Any] | None = None,
                       ) -> tuple[Scored, str, RankedConfig | None]:
    """Score the candidates tier by tier (module doc of `knowledge.metalearner.support`): the
    recorded portfolio; with it the shortened variations; the free sample of the search space.
    The first tier with a supported candidate within the budget wins; the last is used only when
    no supported candidate fits, and then `nearest` is the fastest supported config (outside the
    budget). Raises ConfigError (naming the nearest supported option) when nothing fits at all."""
    cpu_only = bool(budget and budget.cpu_only)
    evidence = learner.support
    if not len(evidence):  # an artifact without its runs: the free sample, as before
        return score_candidates(meta, learner, budget=budget, supported_only=supported_only,
                                order_by=RANK_BY), "extrapolated", None
    recorded = restrict(evidence_candidates(evidence, cpu_only=cpu_only), require)
    # a recorded config too slow for the budget is offered cut to fewer epochs (down to a third,
    # still backed by its runs) beside the recorded configs that fit, as a practitioner would cut
    # a schedule - not only when nothing fits (issue 17: on MNIST-5k in 1 CPU minute the only
    # fitting configs were weaker than the 10-epoch ResNet-18 cut to 4 epochs)
    # (not when the user pinned the epochs: a cut config would not have them)
    # (and cut to the most epochs predicted to fit, when that is more than the half: a 10-epoch
    # default predicted 5 % over the limit is cut to 9 epochs, not 5)
    known = set(recorded)
    slow = [] if "epochs" in (require or {}) else _too_slow(meta, learner, budget, recorded)
    cut = [c for c in dict.fromkeys([*evidence.shortened(c for c, _ in slow),
                                     *_cut_to_fit(evidence, slow, budget)]) if c not in known]
    tiers = [("recorded", list(dict.fromkeys([*recorded, *cut]))),
             ("shortened", restrict(evidence_candidates(evidence, shortened=True,
                                                        cpu_only=cpu_only), require))]
    rewritten: Scored | None = None  # required values no recorded config has: the recorded
    # configs with them set keep the recorded settings (lr, epochs) instead of the free sample's
    for tier, candidates in tiers:
        if not candidates:
            continue
        try:
            scored = score_candidates(meta, learner, budget=budget, candidates=candidates,
                                      supported_only=supported_only, order_by=RANK_BY)
        except ConfigError:
            continue
        if scored.supported_fits:
            if tier == "recorded" and cut and len(scored.order) \
                    and scored.candidates[int(scored.order[0])].key() in {c.key() for c in cut}:
                tier = "shortened"  # the pick is a recorded config cut to fit the budget
            return scored, tier, None
        if require and rewritten is None and len(scored.order):
            rewritten = scored
    nearest = _nearest_supported(meta, learner, budget, tiers[-1][1])
    if rewritten is not None:
        return rewritten, "extrapolated", nearest
    free = list(dict.fromkeys([*restrict(candidate_configs(cpu_only=cpu_only), require),
                               *tiers[-1][1]]))
    try:
        scored = score_candidates(meta, learner, budget=budget, candidates=free,
                                  supported_only=supported_only, order_by=RANK_BY)
    except ConfigError as exc:
        if nearest is None:
            raise
        raise ConfigError(f"{exc}. The nearest supported option: {config_label(nearest)}, "
                          f"~{_time(nearest)} on {nearest.device}") from None
    return scored, "extrapolated", nearest


def _too_slow(meta: MetaFeatures, learner: MetaLearner, budget: Budget | None,
              configs: list) -> list[tuple[TrainConfig, float]]:
    """The configs predicted to train longer than the budget's time limit, with their predicted
    seconds (none without a limit)."""
    if budget is None or budget.max_seconds is None or meta.n_instances is None or not configs:
        return []
    try:
        scored = score_candidates(meta, learner, candidates=configs,
                                  budget=budget.model_copy(update={"max_seconds": None}))
    except ConfigError:
        return []
    seconds = np.nan_to_num(scored.seconds, nan=np.inf)
    return [(c, float(t)) for c, t in zip(scored.candidates, seconds) if t > budget.max_seconds]


def _cut_to_fit(evidence: Evidence, slow: list[tuple[TrainConfig, float]],
                budget: Budget | None) -> list[TrainConfig]:
    """Each too-slow config with the most epochs its predicted time per epoch fits in the limit,
    where that keeps at least a third of its epochs (still backed by its runs: `support.RATIO`)."""
    if budget is None or budget.max_seconds is None:
        return []
    out = []
    for config, seconds in slow:
        if not 0 < seconds < math.inf:
            continue
        epochs = int(config.epochs * budget.max_seconds / seconds)
        if config.epochs > epochs >= config.epochs / RATIO:
            cut = config.model_copy(update={"epochs": epochs})
            if evidence.n_runs([cut])[0] >= MIN_RUNS:
                out.append(cut)
    return out


def _nearest_supported(meta: MetaFeatures, learner: MetaLearner, budget: Budget | None,
                       candidates: list) -> RankedConfig | None:
    """The fastest supported candidate ignoring the time limit (None when there is none)."""
    if not candidates or meta.n_instances is None:
        return None
    open_budget = budget.model_copy(update={"max_seconds": None}) if budget is not None else None
    scored = score_candidates(meta, learner, budget=open_budget, candidates=candidates)
    times = np.nan_to_num(scored.seconds, nan=np.inf)
    return scored.ranked([int(np.argmin(times))])[0]


def _extrapolation_note(budget: Budget | None, nearest: RankedConfig | None) -> str:
    """The plain-words note of an answer whose pick is not backed by recorded runs."""
    text = (f"No config backed by recorded runs fits {budget_text_of(budget)}: this pick "
            "extrapolates beyond the evidence, so its predicted accuracy and time are guesses.")
    if nearest is not None:
        text += (f" The nearest supported option is {config_label(nearest)}: "
                 f"{_pct(nearest.predicted_acc)} in ~{_time(nearest)} on {nearest.device}.")
    return text


def _more_accurate(meta: MetaFeatures, learner: MetaLearner, scored: Scored, budget: Budget | None,
                   best: RankedConfig, built: dict[int, RankedConfig], runner_up_pos: int | None,
                   supported_only: bool, require: dict[str, Any] | None = None,
                   ) -> tuple[RankedConfig | None, str | None, bool]:
    """(config, kind, within the budget) of the `more_accurate` alternative (see Recommendation)."""
    if budget is None or not budget.cpu_only:
        # the same candidates as `scored` (every model); only a time limit may have removed some
        top = int(scored.by_accuracy(time_limit=False)[0])
        source, in_budget = scored, bool(scored.keep is None or scored.keep[top])
    else:  # the CPU-only candidates are their own sample: score every model's
        every = restrict(evidence_candidates(learner.support, shortened=True)
                         or candidate_configs(), require)
        source = score_candidates(meta, learner, budget=None, candidates=every,
                                  supported_only=supported_only, order_by="acc", times=False)
        top = int(source.by_accuracy()[0])
        config = source.candidates[top]
        same = [int(p) for p in scored.order if scored.candidates[p].model == config.model
                and scored.candidates[p] == config]
        if same:  # one of the ranked candidates after all
            source, top, in_budget = scored, same[0], True
        else:
            in_budget = False
    if source.acc[top] > best.predicted_acc + _ACC_EPS:
        if in_budget:
            found = built.get(top) or scored.ranked([top])[0]
            return found, "ranked_lower", True
        return source.ranked([top])[0], "beyond_budget", False
    if runner_up_pos is not None:
        return built[runner_up_pos], "runner_up", True
    return None, None, False
