"""The advisor's routers: after each node that branches, which node runs next.

Routing is deterministic (no LLM): `next_step` is the turn's main decision (launch / ask /
recommend / follow-up) once the message is extracted (and its dataset read); the other routers
read what their node did. Each returns one of its `Literal` routes, the edges of `agent.graph`.
"""

from __future__ import annotations

from typing import Literal

from langchain_core.messages import AIMessage
from langgraph.graph import END

from agent.intents import asks_launch, out_of_scope
from agent.nodes.plan import plans
from agent.nodes.runtime import last_user_text, missing_traits, state_key
from agent.state import AdvisorState, known_traits

Step = Literal["propose_launch", "ask", "recommend", "plan", "agent"]


def next_step(state: AdvisorState) -> Step:
    """Out of scope -> plan (declined); "launch it" with a current recommendation ->
    propose_launch; a required trait missing -> ask; no recommendation for these traits and
    constraints yet (or the plan was edited) -> recommend; a follow-up the graph answers itself
    (`agent.nodes.plan.plans`) -> plan; else the LLM's follow-up loop (agent)."""
    text = last_user_text(state)
    current = bool(state.get("recommendation")) and state.get("recommended_for") == state_key(state)
    if out_of_scope(text):
        return "plan"
    if current and asks_launch(text):
        return "propose_launch"
    if missing_traits(known_traits(state)):
        return "ask"
    if not current:
        return "recommend"
    if plans(state):
        return "plan"
    return "agent"


def after_extract(state: AdvisorState) -> Literal["launch", "analyze", "propose_launch", "ask",
                                                  "recommend", "plan", "agent", "__end__"]:
    """A confirmed launch -> launch; a turn extract answered itself (a cancelled launch, a question
    about an unknown device) -> END; a dataset path named -> analyze; else `next_step`."""
    if state.get("route") in ("launch", END):
        return state["route"]  # type: ignore[return-value]
    if state.get("path_to_read"):
        return "analyze"
    return next_step(state)


def after_analyze(state: AdvisorState) -> Step:
    """`next_step` with the traits the dataset measured."""
    return next_step(state)


def after_recommend(state: AdvisorState) -> Literal["answer", "propose_launch", "__end__"]:
    """The recommendation made -> answer, or propose_launch when this turn asked to launch an
    edited plan ("launch ResNet-18 from scratch instead"); the ranking failed (already told) ->
    END."""
    if state.get("route") == END:
        return END
    launch = state.get("launch_requested") and state.get("dataset")  # else the new plan first
    return "propose_launch" if launch else "answer"


def after_plan(state: AdvisorState) -> Literal["ground", "__end__"]:
    """A declined request (answered) -> END; else the planned answer's draft -> ground."""
    return END if state.get("route") == END else "ground"


def after_agent(state: AdvisorState) -> Literal["tools", "ground"]:
    """The model (or the graph's plan) called tools -> tools; else its draft -> ground."""
    last = (state.get("messages") or [None])[-1]
    return "tools" if isinstance(last, AIMessage) and last.tool_calls else "ground"


def after_ground(state: AdvisorState) -> Literal["answer", "agent", "__end__"]:
    """The answer given (grounded, or the fallback) -> END; else one retry by whoever drafted it."""
    if state.get("route") == END:
        return END
    return "answer" if state.get("mode") == "recommend" else "agent"


__all__ = ["after_agent", "after_analyze", "after_extract", "after_ground", "after_plan",
           "after_recommend", "next_step"]
