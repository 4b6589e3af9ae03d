"""What the advisor's nodes are given besides the state: the `Runtime` (the model with each kind
of call's reply cap, the tools, the recommender, the limits), and the helpers several nodes share.

    rt = make_runtime(model, tools, store=store, max_steps=12)
    graph.add_node("ask", functools.partial(ask, rt=rt))      # every node is `node(state, rt)`
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool

from agent import facts
from agent.extraction import REQUIRED_TRAITS
from agent.followup import slim_tools
from agent.llm import with_max_tokens
from agent.state import AdvisorState, known_traits
from agent.toolcalls import message_text
from knowledge.recommend import Recommendation, get_advisor, meta_from_traits

log = logging.getLogger("agent.graph")

DEFAULT_HEIGHT = 224  # assumed image size (px) when the user gives none; the answer says so
FOLLOWUP_TOOLS = ("analyze_dataset", "rank_configs", "explain_config", "similar_runs", "search_runs")
SLIM_FOLLOWUP_TOOLS = ("explain_config", "rank_configs", "search_runs")  # bound, as slim specs
REQUIRED_TOOLS = ("analyze_dataset", "rank_configs", "explain_config", "similar_runs")
MAX_DRAFTS = 2  # an answer and one retry; then the deterministic fallback
# Reply caps per kind of LLM call (tokens): enough for the reply, short of a runaway.
EXTRACT_TOKENS = 256  # the TurnExtraction JSON (~100 tokens)
ASK_TOKENS = 80  # one question
ANSWER_TOKENS = 400  # the recommendation: six short lines (~150-250 tokens)
FOLLOWUP_TOKENS = 320  # a tool call or a follow-up answer (two to four sentences)
TRANSLATE_TOKENS = 700  # an answer translated into the user's language (`agent.translate`)

Recommender = Callable[[dict[str, Any], str | None, str | None], Any]


@dataclass(frozen=True)
class Runtime:
    """The dependencies of the nodes (built once per graph by `make_runtime`)."""

    extract_model: Any  # the chat model capped at EXTRACT_TOKENS, etc.
    ask_model: Any
    answer_model: Any
    followup_model: Any
    bound_model: Any  # followup_model with the slim follow-up tools bound (if it can bind)
    tools: dict[str, BaseTool]  # by name
    followup_names: list[str]  # the tools the follow-up loop may call
    recommender: Recommender
    max_steps: int
    learner: Callable[[], Any] | None = None  # the recommender's meta-learner (default advisor)
    retries: int = 2
    llm_extraction: str = "auto"
    translate_model: Any = None  # the chat model capped at TRANSLATE_TOKENS


def default_recommender(store: str | Path | None) -> Recommender:
    """Recommendations from the run store's cached advisor (the tools' store)."""

    def recommend(traits: dict[str, Any], budget: str | None, dataset: str | None,
                  require: dict[str, Any] | None = None) -> Any:
        return get_advisor(store).recommend(meta_from_traits(traits), budget=budget,
                                            dataset=dataset, require=require)

    return recommend


def make_runtime(model: BaseChatModel, tools: Sequence[BaseTool], *, store: str | Path | None = None,
                 recommender: Recommender | None = None, max_steps: int, retries: int = 2,
                 llm_extraction: str = "auto") -> Runtime:
    """The Runtime of `model` and `tools`. Raises ValueError for a missing tool or a bad mode."""
    by_name = {t.name: t for t in tools}
    missing = [n for n in REQUIRED_TOOLS if n not in by_name]
    if missing:
        raise ValueError(f"build_advisor needs the tools {', '.join(missing)}")
    if llm_extraction not in ("auto", "always"):
        raise ValueError(f"llm_extraction must be 'auto' or 'always', not {llm_extraction!r}")
    followup_model = with_max_tokens(model, FOLLOWUP_TOKENS)
    try:
        bound_model = followup_model.bind_tools(
            slim_tools([n for n in SLIM_FOLLOWUP_TOOLS if n in by_name]))
    except NotImplementedError:  # a model without native tools: calls come back as text
        bound_model = followup_model
    return Runtime(extract_model=with_max_tokens(model, EXTRACT_TOKENS),
                   ask_model=with_max_tokens(model, ASK_TOKENS),
                   answer_model=with_max_tokens(model, ANSWER_TOKENS),
                   followup_model=followup_model, bound_model=bound_model, tools=by_name,
                   followup_names=[n for n in FOLLOWUP_TOOLS if n in by_name],
                   recommender=recommender or default_recommender(store), max_steps=max_steps,
                   learner=None if recommender else partial(_learner_of, store),
                   retries=retries, llm_extraction=llm_extraction,
                   translate_model=with_max_tokens(model, TRANSLATE_TOKENS))


def _learner_of(store: str | Path | None) -> Any:
    return get_advisor(store).learner


# --- state helpers -------------------------------------------------------------------------------

def text_of(message: BaseMessage) -> str:
    return message_text(message)


def last_user_text(state: AdvisorState) -> str:
    for message in reversed(state.get("messages") or []):
        if isinstance(message, HumanMessage):
            return text_of(message)
    return ""


def missing_traits(traits: dict[str, Any]) -> list[str]:
    """The required traits not known yet, most important first."""
    return [k for k in REQUIRED_TRAITS if traits.get(k) is None]


def state_key(state: AdvisorState) -> str:
    """What a recommendation depends on: the traits and the constraints."""
    return json.dumps({"traits": known_traits(state), "constraints": state.get("constraints") or {}},
                      sort_keys=True, default=str)


def preference(state: AdvisorState) -> str | None:
    return (state.get("constraints") or {}).get("preference")


def speed_first(state: AdvisorState) -> bool:
    return facts.wants_speed(preference(state))


def rec_of(state: AdvisorState) -> Any:
    return Recommendation.model_validate(state["recommendation"])


def chosen_of(state: AdvisorState) -> Any:
    """The RankedConfig the answer presents (the faster one when the user wants speed)."""
    return facts.chosen(rec_of(state), preference(state))


def pick_config(state: AdvisorState) -> dict[str, Any] | None:
    return chosen_of(state).config.model_dump() if state.get("recommendation") else None


def tool_traits(state: AdvisorState) -> dict[str, Any]:
    traits = known_traits(state)
    if "height" not in traits:
        traits["height"] = DEFAULT_HEIGHT
    return traits


def sources(state: AdvisorState) -> list[str]:
    """What an answer may quote (`agent.facts.grounding_sources` of this conversation)."""
    return facts.grounding_sources(
        [o["output"] for o in state.get("tool_outputs") or []],
        [text_of(m) for m in state.get("messages") or [] if isinstance(m, HumanMessage)],
        state.get("recommendation") or None)


def context(state: AdvisorState) -> dict[str, Any]:
    """What the follow-up prompt knows of the conversation."""
    out: dict[str, Any] = {"traits": known_traits(state),
                           "constraints": state.get("constraints") or {},
                           "dataset": state.get("dataset")}
    if state.get("recommendation"):
        out["recommendation"] = facts.recommendation_facts(rec_of(state), compact=True)
    return out


# --- tool calls the graph makes itself ---------------------------------------------------------

def call_id() -> str:
    return f"call_{uuid.uuid4().hex[:16]}"


def invoke(tool: BaseTool, args: dict[str, Any]) -> str:
    """A tool's output as text; an exception (from a tool not built by `tools.base`) as an error."""
    try:
        output = tool.invoke(args)
    except Exception as exc:  # noqa: BLE001 - the model / user gets the error, the graph goes on
        log.exception("tool %s raised", tool.name)
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        return json.dumps({"error": f"{tool.name} failed: {type(exc).__name__}: {first}"})
    return output if isinstance(output, str) else json.dumps(output, default=str)


def recorded(name: str, args: dict[str, Any], output: str,
             turn: int) -> tuple[list[BaseMessage], dict[str, Any]]:
    """The AI/tool messages that record a call in the conversation, and its tool-output entry."""
    cid = call_id()
    messages: list[BaseMessage] = [
        AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": cid,
                                           "type": "tool_call"}]),
        ToolMessage(content=output, tool_call_id=cid, name=name)]
    return messages, {"tool": name, "args": args, "output": output, "turn": turn}


def tool_exchange(tool: BaseTool, args: dict[str, Any],
                  turn: int) -> tuple[str, list[BaseMessage], dict[str, Any]]:
    """Run a tool the graph itself decided to call: its output, the AI/tool messages that record
    the call in the conversation, and the tool-output log entry."""
    output = invoke(tool, args)
    messages, entry = recorded(tool.name, args, output, turn)
    return output, messages, entry


def error_of(output: str) -> str | None:
    try:
        data = json.loads(output)
    except ValueError:
        return None
    return data.get("error") if isinstance(data, dict) else None
