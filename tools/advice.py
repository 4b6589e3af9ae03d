"""Tools over the meta-learner and the run index: rank configs, explain one, find similar runs.

Thin wrappers: arguments are validated here, everything else is `knowledge.recommend` (the
process-wide `Advisor` of the run store: the fitted meta-learner and the retrieval index).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, ConfigDict, Field

from knowledge.explain import explain
from knowledge.metalearner.budget import format_seconds, parse_budget
from knowledge.metalearner.ranking import rank
from knowledge.recommend import budget_text, get_advisor, meta_from_traits
from knowledge.search_space import validate_config
from tools.base import make_tool
from tools.schemas import Config, Traits

# --- argument schemas ----------------------------------------------------------------------------

class RankArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    traits: Traits = Field(description="what is known about the dataset")
    top_k: int = Field(5, ge=1, le=20, description="how many configs to return")
    budget: str | None = Field(None, description="compute budget in the user's words, e.g. "
                                                 "'one hour on a T4', 'CPU only', '10 minutes'; "
                                                 "null if the user gave none")
    require: dict[str, Any] | None = Field(
        None, description="config values the configs must have, e.g. {\"pretrained\": false} "
                          "or {\"model\": \"resnet50\"}; null for none")


class ExplainArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    traits: Traits = Field(description="what is known about the dataset")
    config: Config = Field(description="the training config to explain")
    budget: str | None = Field(None, description="the device its training time is predicted on, "
                                                 "e.g. 'a T4', 'CPU only' (a time limit is "
                                                 "ignored); null: this CPU")


class SimilarArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    traits: Traits = Field(description="what is known about the dataset")
    k: int = Field(5, ge=1, le=20, description="how many runs (one per past dataset)")


class SearchArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(min_length=1, max_length=500,
                          description="a question in words, e.g. 'what worked on dermoscopy?'")
    k: int = Field(5, ge=1, le=20, description="how many runs")


# --- shared helpers ------------------------------------------------------------------------------

def _meta(traits: Traits | dict[str, Any]):  # noqa: ANN202 - MetaFeatures
    stated = traits.stated() if isinstance(traits, Traits) else Traits.model_validate(traits).stated()
    return meta_from_traits(stated)


def _config(config: Config | dict[str, Any]):  # noqa: ANN202 - TrainConfig
    stated = config.stated() if isinstance(config, Config) else Config.model_validate(config).stated()
    return validate_config(stated)


def _pct(x: float | None) -> float | None:
    return None if x is None else round(100 * x, 1)


def outcome_json(r: Any) -> dict[str, Any]:
    """The predicted outcome of a RankedConfig, under the key names every serialisation of it
    uses (`ranked_json` here, `agent.facts.ranked_facts`): the accuracy and its 80 % interval in %
    (`agent.grounding` reads `*_pct` keys as percentages), the training time in words."""
    return {"predicted_accuracy_pct": _pct(r.predicted_acc),
            "interval_80_pct": [_pct(r.acc_lo), _pct(r.acc_hi)],
            "training_time": format_seconds(r.predicted_seconds) + f" on {r.device}"}


def ranked_json(r: Any) -> dict[str, Any]:
    """A RankedConfig for the LLM: the full config and its predicted outcome (`outcome_json`)."""
    out: dict[str, Any] = {"rank": r.rank, "config": r.config.model_dump(),
                           "model_name": r.config.spec.label, **outcome_json(r)}
    if r.time_is_estimate and r.predicted_seconds is not None:
        out["time_is_rough"] = True
    if r.extrapolated:
        out["beyond_evidence"] = r.extrapolated
    if r.support is not None:
        out["evidence"] = r.support.text()
    return out


def hit_json(h: Any) -> dict[str, Any]:
    """A retrieved run: what it was and what it reached (the card says it in words)."""
    return {"run_id": h.run_id, "dataset": h.dataset_id, "model": h.model, "scheme": h.scheme,
            "resolution": h.resolution, "test_acc_pct": _pct(h.test_acc), "source": h.source,
            "similarity": round(h.score, 3), "card": h.card}


def rank_output(rec: Any) -> dict[str, Any]:
    """What rank_configs returns for a `Recommendation` (the advisor graph records it without
    ranking again)."""
    out: dict[str, Any] = {
        "traits_used": rec.meta_features.model_dump(exclude_none=True),
        "unknown_traits": rec.missing_traits,
        "budget": budget_text(rec),
        "top": [ranked_json(r) for r in rec.top],
        "why_best": [f.text for f in rec.explanation.factors],
        "faster_alternative": ranked_json(rec.faster) if rec.faster else None,
        "more_accurate_alternative": (dict(ranked_json(rec.more_accurate),
                                           kind=rec.more_accurate_kind)
                                      if rec.more_accurate else None),
        "candidates_scored": rec.n_candidates,
    }
    if rec.notes:
        out["notes"] = rec.notes
    if rec.memory:
        out["memory"] = rec.memory
    return out


def explain_output(meta: Any, learner: Any, config: Any, explanation: Any = None,
                   budget: Any = None) -> dict[str, Any]:
    """What explain_config returns for `config` on `meta`: its prediction, its training time on
    the `budget`'s device (a Budget or text; its time limit ignored; None: this CPU) and its SHAP
    factors (`explanation` when already computed, e.g. a Recommendation's)."""
    if isinstance(budget, str):
        budget = parse_budget(budget)
    if budget is not None:
        budget = budget.model_copy(update={"max_seconds": None})
    ranked = rank(meta, learner, top_k=1, candidates=[config], budget=budget)[0]
    expl = explanation if explanation is not None else explain(learner, meta, config)
    predicted = ranked_json(ranked)
    predicted.pop("rank")
    return {
        **predicted,
        "average_over_past_runs_pct": round(expl.base_value, 1),
        "factors": [{"factor": f.label, "value": f.value_text,
                     "points": round(f.contribution_points, 2)} for f in expl.factors],
        "reading": "points add up: average + factors = predicted accuracy",
    }


def similar_output(hits: Any) -> dict[str, Any]:
    """What similar_runs returns for these hits."""
    return {"runs": [hit_json(h) for h in hits]}


# --- tools ---------------------------------------------------------------------------------------

def build(store: str | Path | None = None) -> list[StructuredTool]:
    """The advice tools over the run store `store` (default: the user's)."""

    def advisor():  # noqa: ANN202
        return get_advisor(store)

    def rank_configs(traits: Traits | dict, top_k: int = 5, budget: str | None = None,
                     require: dict[str, Any] | None = None) -> dict:
        return rank_output(advisor().recommend(_meta(traits), top_k=top_k, budget=budget,
                                               require=require))

    def explain_config(traits: Traits | dict, config: Config | dict,
                       budget: str | None = None) -> dict:
        return explain_output(_meta(traits), advisor().learner, _config(config), budget=budget)

    def similar_runs(traits: Traits | dict, k: int = 5) -> dict:
        return similar_output(advisor().index.similar_runs(_meta(traits), k=k, dedupe_datasets=True))

    def search_runs(question: str, k: int = 5) -> dict:
        hits = advisor().search_text(question, k=k)
        return {"runs": [hit_json(h) for h in hits]}

    return [
        make_tool(rank_configs, "rank_configs",
                  "Recommend training configs (model + hyperparameters) for a dataset described "
                  "by its traits, within an optional compute budget. Returns the top configs with "
                  "predicted accuracy (%, with an 80 % interval) and training time, the reasons "
                  "for the best one, a faster and a more accurate alternative. Use this first when "
                  "the user asks what to train.", RankArgs),
        make_tool(explain_config, "explain_config",
                  "Predict and explain the accuracy of ONE given config on a dataset: which traits "
                  "and settings raise or lower it, in accuracy points. Use it when the user asks "
                  "'why' or 'what about model X'.", ExplainArgs),
        make_tool(similar_runs, "similar_runs",
                  "Past training runs on the datasets most similar to the described one (the best "
                  "run per past dataset), with their real test accuracy. Use it as evidence.",
                  SimilarArgs),
        make_tool(search_runs, "search_runs",
                  "Search past training runs by a question in words (e.g. 'ViT on ultrasound', "
                  "'what failed on CPU'). Returns matching runs with their outcome.", SearchArgs),
    ]
