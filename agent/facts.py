"""One source of the facts about a recommendation: which config is presented, how a ranked config
is written out, the facts the answer is written from, and the grounding sources.

    ranked = chosen(rec, "speed")                 # the faster alternative when the user wants speed
    ranked_facts(ranked)                          # {"model": ..., "predicted_accuracy_pct": ...}
    recommendation_facts(rec, "speed", compact=True)   # what the LLM is shown
    grounding_sources(tool_outputs, user_texts, rec)   # what an answer may quote

`rec` is a `knowledge.recommend.Recommendation`. A ranked config is written out ONLY by
`ranked_facts`, with the key names of `RANKED_KEYS`; its predicted outcome (accuracy, interval,
time) by `tools.advice.outcome_json`, which the tools' `ranked_json` shares, so tool outputs and
facts name the same numbers alike. `agent.grounding` reads the unit of a JSON
number from its key with `KEY_KINDS` first, so a renamed key fails `tests/agent/test_facts.py`
instead of silently changing what the grounding check verifies.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from knowledge.recommend import Recommendation, budget_text
from knowledge.search_space import MODELS
from tools.advice import outcome_json

SPEED = "speed"  # the preference that presents the faster alternative

# The keys of a ranked config as `ranked_facts` writes it, in order.
RANKED_KEYS: tuple[str, ...] = (
    "model", "model_name", "pretrained", "scheme", "resolution_px", "optimizer", "lr",
    "weight_decay", "batch_size", "epochs", "augmentation", "label_smoothing",
    "predicted_accuracy_pct", "interval_80_pct", "training_time", "evidence")
# The keys the compact facts keep of an alternative (its defining settings and outcome).
COMPACT_RANKED_KEYS: tuple[str, ...] = (
    "model", "model_name", "pretrained", "scheme", "resolution_px", "lr", "epochs",
    "predicted_accuracy_pct", "interval_80_pct", "training_time")
# The kind (unit) of each number the facts write, by key: `agent.grounding` reads JSON numbers
# of these keys as these kinds ("pct": a percentage, "px": pixels, "plain": no unit, ...).
KEY_KINDS: dict[str, str] = {
    "resolution_px": "px", "lr": "lr", "weight_decay": "wd", "batch_size": "batch",
    "epochs": "epochs", "label_smoothing": "plain", "predicted_accuracy_pct": "pct",
    "interval_80_pct": "pct", "average_over_past_runs_pct": "pct",
}
COMPACT_WHY = 4  # SHAP factors the compact facts keep
COMPACT_RUNS = 3  # similar past runs the compact facts keep
_SCHEME_WORDS = {"end_to_end": "end-to-end", "linear_probing": "linear probe", "knn": "kNN"}
_COMPACT_TRAITS = ("n_instances", "n_classes", "imbalance_ratio", "height", "width", "channels",
                   "modality")


def wants_speed(preference: str | None) -> bool:
    """Whether a preference (`constraints["preference"]`) asks for the faster alternative."""
    return preference == SPEED


def chosen(rec: Any, preference: str | None) -> Any:
    """The RankedConfig an answer presents for `preference`: for speed `speed_pick` when there is
    one, else the best within the budget."""
    return (speed_pick(rec) or rec.best) if wants_speed(preference) else rec.best


def speed_pick(rec: Any) -> Any:
    """The config for speed: the faster alternative; without one (it is never forecast more
    accurate than the pick), the highest-ranked config below the pick (`top`, then a 'ranked
    lower' more accurate one within the budget) that trains faster and is forecast no more than
    `faster_within_points` less accurate, so forecast more accurate. Since the default became the
    anchor, configs the records show no better than it sit below it although they train faster:
    "make it faster" must not answer with the same config. None when nothing is faster."""
    if rec.faster is not None:
        return rec.faster
    best = rec.best
    if best.predicted_seconds is None:
        return None
    floor = best.predicted_acc - rec.faster_within_points / 100.0
    lower = [*rec.top[1:], *([rec.more_accurate] if rec.more_accurate is not None
                             and rec.more_accurate_kind == "ranked_lower"
                             and rec.more_accurate_within_budget else [])]
    return next((r for r in lower if r.predicted_seconds is not None
                 and r.predicted_seconds < best.predicted_seconds and r.predicted_acc >= floor), None)


def pick_config(rec: Any, preference: str | None) -> dict[str, Any]:
    """The presented config as a TrainConfig dict (the `pick` of `agent.grounding`)."""
    return chosen(rec, preference).config.model_dump()


def ranked_facts(r: Any, short: bool = False) -> dict[str, Any] | None:
    """THE serialisation of a RankedConfig (keys `RANKED_KEYS`; `short`: `COMPACT_RANKED_KEYS`):
    accuracies in %, the time in words (`tools.advice.outcome_json`)."""
    if r is None:
        return None
    c = r.config
    out = {"model": c.model, "model_name": c.spec.label, "pretrained": c.pretrained,
           "scheme": c.scheme, "resolution_px": c.resolution, "optimizer": c.optimizer,
           "lr": c.lr, "weight_decay": c.weight_decay, "batch_size": c.batch_size,
           "epochs": c.epochs, "augmentation": c.augmentation,
           "label_smoothing": c.label_smoothing, **outcome_json(r)}
    if r.time_is_estimate and r.predicted_seconds:
        out["training_time"] += " (rough estimate)"
    if r.support is not None:  # the recorded runs behind it, or that it extrapolates
        out["evidence"] = r.support.text()
    return {k: out[k] for k in COMPACT_RANKED_KEYS} if short else out


def run_line(hit: Any) -> str:
    """A past run in one short line: dataset, model, scheme, px -> test accuracy (± its spread)."""
    name = (hit.card.split(" (", 1)[0] if hit.card else hit.dataset_id).split(" [", 1)[0]
    model = MODELS[hit.model].label if hit.model in MODELS else hit.model
    acc = "" if hit.test_acc is None else f" → test acc {round(100 * hit.test_acc, 1)}%" + (
        f" ± {round(100 * hit.test_acc_std, 1)}" if hit.test_acc_std else "")
    return (f"{name}: {model}, {_SCHEME_WORDS.get(hit.scheme, hit.scheme)}, {hit.resolution} px"
            f"{acc} ({hit.source})")


def recommendation_facts(rec: Any, preference: str | None = None,
                         compact: bool = False) -> dict[str, Any]:
    """The facts the answer is written from, with the config `chosen(rec, preference)` first.

    `compact` (what the LLM is shown; the full facts stay a grounding source): the alternatives
    keep only their defining settings and outcome, `COMPACT_WHY` factors, `COMPACT_RUNS` similar
    runs as one short line each, and no derived traits — about half the prompt tokens."""
    pick = chosen(rec, preference)
    facts = {
        "recommended": ranked_facts(pick),
        "chosen_for": "speed (the faster alternative)" if pick is not rec.best else "accuracy",
        "best_within_budget": ranked_facts(rec.best, compact) if pick is not rec.best else None,
        "budget": budget_text(rec),
        "why": [f.text for f in rec.explanation.factors],
        "average_over_past_runs_pct": round(rec.explanation.base_value, 1),
        "faster_alternative": ranked_facts(rec.faster, compact) if pick is rec.best else None,
        # a runner-up is not "more accurate" (the pick already has the highest prediction)
        "more_accurate_alternative": (ranked_facts(rec.more_accurate, compact)
                                      if rec.more_accurate_kind != "runner_up"
                                      and rec.more_accurate is not pick else None),
        "runner_up_alternative": (ranked_facts(rec.more_accurate, compact)
                                  if rec.more_accurate_kind == "runner_up" else None),
        "more_accurate_kind": rec.more_accurate_kind,
        "similar_past_runs": [h.card for h in rec.similar_runs],
        "dataset_traits": rec.meta_features.model_dump(exclude_none=True),
        "unknown_traits": rec.missing_traits,
        "notes": rec.notes,
    }
    if compact:
        facts.update(why=facts["why"][:COMPACT_WHY],
                     similar_past_runs=[run_line(h) for h in rec.similar_runs[:COMPACT_RUNS]],
                     dataset_traits={k: v for k, v in facts["dataset_traits"].items()
                                     if k in _COMPACT_TRAITS})
    return facts


def _recommendation(rec: Any) -> Any:
    """A Recommendation from itself or its JSON dict (None stays None)."""
    if rec is None or not isinstance(rec, dict):
        return rec
    return Recommendation.model_validate(rec) if rec else None


def recommendation_sources(rec: Any) -> list[str]:
    """What a recommendation lets an answer quote, as grounding sources: the card, the
    recommendation itself and the facts the prompts show (best, faster, compact)."""
    rec = _recommendation(rec)
    if rec is None:
        return []
    return [rec.to_markdown(), json.dumps(rec.model_dump(mode="json")),
            json.dumps(recommendation_facts(rec)), json.dumps(recommendation_facts(rec, SPEED)),
            json.dumps(recommendation_facts(rec, compact=True))]


def pick_sources(rec: Any, preference: str | None) -> list[str]:
    """The sources of the config an answer presents (`chosen(rec, preference)`)."""
    rec = _recommendation(rec)
    return [json.dumps(rec.model_dump(mode="json")),
            json.dumps(recommendation_facts(rec, preference))]


def grounding_sources(tool_outputs: Iterable[str], user_texts: Iterable[str],
                      rec: Any = None) -> list[str]:
    """Everything an answer may quote: the tool outputs, the user's messages (without the outcomes
    they state, `agent.grounding.user_source`) and the recommendation (a Recommendation or its
    JSON dict; None when there is none yet)."""
    from agent.grounding import user_source  # lazy: import cycle (agent.grounding.sources imports agent.facts)

    return [*tool_outputs, *(user_source(t) for t in user_texts), *recommendation_sources(rec)]


__all__ = ["COMPACT_RANKED_KEYS", "COMPACT_RUNS", "COMPACT_WHY", "KEY_KINDS", "RANKED_KEYS",
           "SPEED", "chosen", "grounding_sources", "pick_config", "pick_sources",
           "ranked_facts", "recommendation_facts", "recommendation_sources", "run_line",
           "wants_speed"]
