"""`recommend`: the turn's `Recommendation` for the known traits and constraints, with the tool
calls that ground it (rank_configs, explain_config of the presented config, similar_runs)."""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langgraph.graph import END

from agent import facts
from agent.nodes.runtime import DEFAULT_HEIGHT, Runtime, error_of, recorded, state_key, tool_exchange
from agent.state import AdvisorState
from knowledge.errors import ConfigError
from knowledge.metalearner.budget import parse_budget
from tools.advice import explain_output, rank_output, similar_output
from tools.base import safe, to_json

ASSUMED_CPU_TIME = "1 hour"  # a CPU without a time limit: ranked for at most this (and asked)


def effective_budget(budget: str | None) -> tuple[str | None, bool]:
    """The budget the ranking uses, and whether its time is assumed: no budget, or a CPU without a
    time ("my laptop"), is ranked for at most `ASSUMED_CPU_TIME` on the CPU (without a limit a
    laptop user got a 7.7-hour plan); an unreadable budget is left to the ranking to report."""
    try:
        parsed = parse_budget(budget) if budget else None
    except ConfigError:
        return budget, False
    if parsed is None:
        return f"CPU only, {ASSUMED_CPU_TIME}", True
    if parsed.device == "cpu" and parsed.max_seconds is None and not NO_LIMIT.search(budget or ""):
        return f"{budget}, {ASSUMED_CPU_TIME}", True
    return budget, False


# "CPU only, no time limit": the user said so, nothing to assume
NO_LIMIT = re.compile(r"\bno\s+(?:time\s+)?limit|\bunlimited\b|\bas\s+long\s+as\s+(?:it\s+takes|needed)|"
                       r"\bno\s+rush\b|\bany\s+time\b|sans\s+limite|sin\s+l[ií]mite|ohne\s+"
                       r"(?:zeit)?limit|senza\s+limit", re.IGNORECASE)


def recommend(state: AdvisorState, rt: Runtime) -> dict[str, Any]:
    """The recommendation (`route` "answer"), or the reason there is none (`route` END).

    The ranking runs once: the `Recommendation` is recorded as the rank_configs, explain_config
    (of the presented config) and similar_runs calls, their outputs as those tools write them (the
    grounding sources), reusing its SHAP explanation and similar runs; only the faster
    alternative's explanation (not in the Recommendation) is a real explain_config call."""
    traits = dict(state.get("traits") or {})
    if "height" not in traits:
        traits["height"] = {"value": DEFAULT_HEIGHT, "source": "assumed"}
    values = {k: t["value"] for k, t in traits.items()}
    constraints = dict(state.get("constraints") or {})
    turn = state["turn"]
    messages: list[BaseMessage] = []
    logs: list[dict] = []
    problem = state.get("problem")
    made: list[Any] = []

    def record(name: str, args: dict[str, Any], output: str) -> str:
        msgs, entry = recorded(name, args, output, turn)
        messages.extend(msgs)
        logs.append(entry)
        return output

    @safe
    def rank_configs(budget: str | None) -> dict[str, Any]:
        require = constraints.get("require")
        made.append(rt.recommender(values, budget, state.get("dataset"), require=require)
                    if require else rt.recommender(values, budget, state.get("dataset")))
        return rank_output(made[-1])

    def ranked(budget: str | None) -> str:
        args = {"traits": values, "top_k": 5, "budget": budget}
        if constraints.get("require"):
            args["require"] = constraints["require"]
        return record("rank_configs", args, rank_configs(budget))

    budget, assumed = effective_budget(constraints.get("budget"))
    error = error_of(ranked(budget))
    if error and constraints.get("budget"):  # an unreadable budget: say so, rank without it
        problem = f"I ignored the budget {constraints['budget']!r}: {error}"
        constraints["budget"] = None
        budget, assumed = effective_budget(None)
        error = error_of(ranked(budget))
    update: dict[str, Any] = {"traits": traits, "constraints": constraints, "time_assumed": assumed,
                              "tool_outputs": logs, "messages": messages, "problem": problem}
    if error:
        update["messages"] = [*messages, AIMessage(
            f"I could not rank configs for these traits: {error}")]
        update["route"] = END
        return update
    rec = made[-1]
    chosen = facts.chosen(rec, constraints.get("preference"))
    explain_args = {"traits": values, "config": chosen.config.model_dump()}
    if rec.budget is not None:  # its time on the budget's device, as the ranking's
        explain_args["budget"] = budget
    if chosen is rec.best and rt.learner is not None:  # its SHAP factors are the card's

        @safe
        def explain_config() -> dict[str, Any]:
            return explain_output(rec.meta_features, rt.learner(), chosen.config, rec.explanation,
                                  budget=rec.budget)

        record("explain_config", explain_args, explain_config())
    else:  # the faster alternative (or another recommender's pick): the tool explains it
        _, msgs, entry = tool_exchange(rt.tools["explain_config"], explain_args, turn)
        messages.extend(msgs)
        logs.append(entry)
    record("similar_runs", {"traits": values, "k": 5}, to_json(similar_output(rec.similar_runs)))
    update.update(recommendation=rec.model_dump(mode="json"), mode="recommend", route="answer",
                  focus=None, recommended_turn=turn,
                  recommended_for=state_key({**state, "traits": traits,
                                             "constraints": constraints}))
    return update
