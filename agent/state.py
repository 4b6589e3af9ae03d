"""The advisor's state: what one conversation (one thread) knows between and within turns.

Everything is plain JSON-like data (dicts, lists, strings, messages) so that the SQLite
checkpointer stores and restores it as it is.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, Literal, NotRequired, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph.message import add_messages

from agent.timing import merge_timing

Source = Literal["stated", "measured", "assumed", "vague"]


class Trait(TypedDict):
    """One known dataset trait and where it came from (`agent.traitcheck.merge_traits`)."""

    value: Any
    # stated by the user, measured by analyze_dataset, assumed by default, or a vague amount the
    # user gave ("a few thousand": value 3000, range [2000, 5000]); it is not asked for again
    source: Source
    range: NotRequired[list[float]]  # [lo, hi] of a range or vague amount ("2,000-3,000 images")
    asked: NotRequired[dict[str, Any]]  # a conflict question about it waits for the user's answer


class Constraints(TypedDict, total=False):
    budget: str | None  # compute budget in the user's words ("one hour on a T4", "CPU only")
    preference: Literal["accuracy", "speed", "balanced"] | None
    require: dict[str, Any]  # config values the user asked for ("from scratch", "64 px")


class ToolOutput(TypedDict):
    """One tool call the graph made and what came back (the grounding sources)."""

    tool: str
    args: dict[str, Any]
    output: str
    turn: int


class AdvisorState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    traits: dict[str, Trait]  # MetaFeatures-like name -> value + provenance
    constraints: Constraints
    dataset: str | None  # the dataset spec analyze_dataset read (for a launch)
    pending_question: str | None  # the trait the last question asked for
    recommendation: dict[str, Any] | None  # Recommendation.model_dump(mode="json")
    recommended_for: str | None  # key of the traits + constraints it was made for
    recommended_turn: int | None  # the user turn that made it (a remade one can equal the last)
    tool_outputs: Annotated[list[ToolOutput], operator.add]
    awaiting_launch_confirmation: bool
    pending_launch: dict[str, Any] | None  # launch_training arguments waiting for a "yes"
    launched_run: dict[str, Any] | None  # what launch_training returned
    language: str | None  # the user's language (`agent.language.detect`), None: English
    budget_asked: bool  # the hardware / time question was asked (it is asked once)
    time_assumed: bool  # the recommendation ranked a CPU budget without a time for at most an hour
    focus: dict[str, Any] | None  # the other model the last what-if was about ({"model", ...})
    turn: int  # user turns so far
    step: int  # model/tool rounds within this turn (bounded)
    # -- within one turn --------------------------------------------------------------------
    route: str | None  # a node's own verdict for its router (`agent.routing`): extract "launch" / END,
    # recommend END (no recommendation), ground END / "answer" / "agent"
    path_to_read: str | None  # a dataset path the latest message named, not read yet
    problem: str | None  # a tool error to tell the user this turn
    draft: str | None  # an answer waiting for the grounding check
    mode: str  # what wrote the draft: "recommend" (answer), "followup" (agent) or "plan"
    violations: list[str]  # ungrounded numbers / names of the last draft
    rejected: list[dict[str, Any]]  # this turn's drafts the check refused: draft + violations
    attempts: int  # drafts written this turn
    planned: bool  # this turn's tool calls were planned by the graph (the model only answers)
    launch_requested: bool  # this turn asked to launch (after re-ranking an edited plan)
    timing: Annotated[dict[str, Any] | None, merge_timing]  # the last turn: seconds, LLM usage


def known_traits(state: AdvisorState) -> dict[str, Any]:
    """The trait values known so far (provenance dropped)."""
    return {k: t["value"] for k, t in (state.get("traits") or {}).items()}


def recommended_this_turn(state: AdvisorState) -> bool:
    """Whether the last user turn made a recommendation (remade for a new preference, it can equal
    the last one, to its latency's last digit)."""
    turn = state.get("turn")
    return (state.get("recommendation") is not None and turn is not None
            and state.get("recommended_turn") == turn)


__all__ = ["AdvisorState", "Constraints", "Source", "ToolOutput", "Trait", "known_traits",
           "recommended_this_turn"]
