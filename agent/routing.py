"""The advisor's routers: after each node that branches, which node runs next.

Routing is deterministic (no LLM): `next_step` is the turn's main decision (launch / ask /
recommend / follow-up) once the message is extracted (and its dataset read); the other routers
read what their node did. Each returns one of its `Literal` routes, the edges of `agent.graph`.
"""

from __future__ import annotations

import re
from typing import Literal

from langchain_core.messages import AIMessage
from langgraph.graph import END

from agent.nodes.runtime import last_user_text, missing_traits, state_key
from agent.state import AdvisorState, known_traits

_LAUNCH = re.compile(r"\b(launch|start|kick off|begin)\b.{0,25}\b(it|training|the training|"
                     r"this|that|the run|a run)\b|\btrain (it|this|that|now)\b", re.IGNORECASE)

Step = Literal["propose_launch", "ask", "recommend", "agent"]


def next_step(state: AdvisorState) -> Step:
    """"launch it" (with a recommendation) -> propose_launch; a required trait missing -> ask; no
    recommendation for these traits and constraints yet -> recommend; else a follow-up (agent)."""
    text = last_user_text(state)
    if state.get("recommendation") and _LAUNCH.search(text) and "?" not in text:
        return "propose_launch"
    if missing_traits(known_traits(state)):
        return "ask"
    if not state.get("recommendation") or state.get("recommended_for") != state_key(state):
        return "recommend"
    return "agent"


def after_extract(state: AdvisorState) -> Literal["launch", "analyze", "propose_launch", "ask",
                                                  "recommend", "agent", "__end__"]:
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


def after_recommend(state: AdvisorState) -> Literal["answer", "__end__"]:
    """The recommendation made -> answer; the ranking failed (already told) -> END."""
    return END if state.get("route") == END else "answer"


def after_agent(state: AdvisorState) -> Literal["tools", "ground"]:
    """The model (or the graph's plan) called tools -> tools; else its draft -> ground."""
    last = (state.get("messages") or [None])[-1]
    return "tools" if isinstance(last, AIMessage) and last.tool_calls else "ground"


def after_ground(state: AdvisorState) -> Literal["answer", "agent", "__end__"]:
    """The answer given (grounded, or the fallback) -> END; else one retry by whoever drafted it."""
    if state.get("route") == END:
        return END
    return "answer" if state.get("mode") == "recommend" else "agent"


__all__ = ["after_agent", "after_analyze", "after_extract", "after_ground", "after_recommend",
           "next_step"]
