"""The advisor: a LangGraph graph that turns a conversation into a grounded recommendation.

    graph = build_advisor(model, checkpointer=open_checkpointer("threads.sqlite"))
    reply = advise(graph, "3,000 chest X-rays, 3 classes, one hour on a T4", thread_id="alice")

Each user turn goes `extract` (regex extraction, plus an LLM structured extraction when the
regexes may have missed something) -> `analyze` (when the message names a dataset path; the tool
enforces the data roots) -> then, deterministically:

- a required trait missing (n_instances, n_classes, modality) -> `ask` one question;
- no recommendation yet, or the traits / constraints changed -> `recommend` (rank_configs,
  explain_config, similar_runs through the tools, and the `Recommendation`) -> `answer` (the LLM
  writes it from compact facts) -> `ground` (every number must be a tool output's number of the
  same kind about the same config, and every model / dataset / optimizer / run named must be in
  the tool outputs, `agent.grounding.check_answer`; and the answer must state the pick itself:
  model, pretrained / scratch, scheme, resolution, lr, epochs, predicted accuracy and time,
  `agent.grounding.unstated_pick`: else one retry listing the violations, else the deterministic
  `Recommendation.to_markdown()`);
- "launch it" -> `propose_launch` (asks for an explicit yes); only a yes in the NEXT user turn
  reaches `launch`, the one node that calls launch_training (with confirmed=true);
- any other follow-up -> `agent` <-> `tools`, a bounded tool-calling loop over slim tool specs
  (`agent.followup`: the graph fills in the traits and the recommended config; launch_training is
  not among them; tool errors go back to the model as tool messages) -> `ground`. A follow-up
  naming a known model ("why not a ViT?") gets its explain_config call planned by the graph, and
  the model only writes the answer.

Every node reports its seconds and LLM usage in the state's `timing` (`agent.timing`), and each
kind of LLM call has its own reply cap (`*_TOKENS`): a small model on a CPU spends most of a
turn's time reading prompts and writing tokens.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (AIMessage, BaseMessage, HumanMessage, SystemMessage,
                                     ToolMessage)
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph

from agent import prompts
from agent.extraction import REQUIRED_TRAITS, device_question, extract_turn, unknown_device
from agent.followup import (
    asks_why_pick,
    llm_history,
    planned_calls,
    slim_tools,
    tool_args,
    why_pick_answer,
)
from agent.grounding import (
    check_answer,
    launch_violations,
    launched_ok,
    unstated_pick,
    user_source,
)
from agent.llm import with_max_tokens
from agent.state import AdvisorState, known_traits
from agent.timing import timed
from knowledge.errors import ConfigError, StoreError

log = logging.getLogger(__name__)

DEFAULT_HEIGHT = 224  # assumed image size (px) when the user gives none; the answer says so
FOLLOWUP_TOOLS = ("analyze_dataset", "rank_configs", "explain_config", "similar_runs", "search_runs")
SLIM_FOLLOWUP_TOOLS = ("explain_config", "rank_configs", "search_runs")  # bound, as slim specs
MAX_DRAFTS = 2  # an answer and one retry; then the deterministic fallback
# Reply caps per kind of LLM call (tokens): enough for the reply, short of a runaway.
EXTRACT_TOKENS = 256  # the TurnExtraction JSON (~100 tokens)
ASK_TOKENS = 80  # one question
ANSWER_TOKENS = 400  # the recommendation: six short lines (~150-250 tokens)
FOLLOWUP_TOKENS = 320  # a tool call or a follow-up answer (two to four sentences)
_YES = re.compile(r"\s*(yes|y|yep|yeah|sure|ok(ay)?|confirm(ed)?|go ahead|do it|start it|"
                  r"launch it|please do)([,!. ]+(please|go ahead|start it|launch it|do it|"
                  r"start|launch))*\s*[.!]*\s*", re.IGNORECASE)
_NO = re.compile(r"\s*(no|n|nope|cancel|stop|don'?t|do not|not now|wait)\b.{0,40}", re.IGNORECASE)
_LAUNCH = re.compile(r"\b(launch|start|kick off|begin)\b.{0,25}\b(it|training|the training|"
                     r"this|that|the run|a run)\b|\btrain (it|this|that|now)\b", re.IGNORECASE)

Recommender = Callable[[dict[str, Any], str | None, str | None], Any]


# --- small helpers -------------------------------------------------------------------------------

def _with_time_of(budget: str, held: str | None) -> str:
    """`budget` ("an RTX 4090", the answer to "which GPU is that?") with the time of the `held`
    clause it replaces ("2 hours on my Quadro K2200") when the answer states no time itself."""
    from knowledge.metalearner.budget import parse_duration

    if not held:
        return budget
    try:
        if parse_duration(budget) is not None or (seconds := parse_duration(held)) is None:
            return budget
    except ConfigError:
        return budget
    return f"{budget}, {seconds / 60:g} minutes"


def _names_device(budget: str) -> bool:
    from knowledge.metalearner.budget import names_device

    return names_device(budget)


def _text(message: BaseMessage) -> str:
    from agent.toolcalls import message_text

    return message_text(message)


def _last_user_text(state: AdvisorState) -> str:
    for message in reversed(state.get("messages") or []):
        if isinstance(message, HumanMessage):
            return _text(message)
    return ""


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:16]}"


def _tool_exchange(tool: BaseTool, args: dict[str, Any], turn: int) -> tuple[str, list[BaseMessage], dict]:
    """Run a tool the graph itself decided to call: its output, the AI/tool messages that record
    the call in the conversation, and the tool-output log entry."""
    call_id = _call_id()
    output = _invoke(tool, args)
    messages: list[BaseMessage] = [
        AIMessage(content="", tool_calls=[{"name": tool.name, "args": args, "id": call_id,
                                           "type": "tool_call"}]),
        ToolMessage(content=output, tool_call_id=call_id, name=tool.name)]
    return output, messages, {"tool": tool.name, "args": args, "output": output, "turn": turn}


def _invoke(tool: BaseTool, args: dict[str, Any]) -> str:
    """A tool's output as text; an exception (from a tool not built by `tools.base`) as an error."""
    try:
        output = tool.invoke(args)
    except Exception as exc:  # noqa: BLE001 - the model / user gets the error, the graph goes on
        log.exception("tool %s raised", tool.name)
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        return json.dumps({"error": f"{tool.name} failed: {type(exc).__name__}: {first}"})
    return output if isinstance(output, str) else json.dumps(output, default=str)


def _error_of(output: str) -> str | None:
    try:
        data = json.loads(output)
    except ValueError:
        return None
    return data.get("error") if isinstance(data, dict) else None


def missing_traits(traits: dict[str, Any]) -> list[str]:
    """The required traits not known yet, most important first."""
    return [k for k in REQUIRED_TRAITS if traits.get(k) is None]


def state_key(state: AdvisorState) -> str:
    """What a recommendation depends on: the traits and the constraints."""
    return json.dumps({"traits": known_traits(state), "constraints": state.get("constraints") or {}},
                      sort_keys=True, default=str)


def default_recommender(store: str | Path | None) -> Recommender:
    """Recommendations from the run store's cached advisor (the tools' store)."""

    def recommend(traits: dict[str, Any], budget: str | None, dataset: str | None) -> Any:
        from knowledge.recommend import get_advisor, meta_from_traits

        return get_advisor(store).recommend(meta_from_traits(traits), budget=budget, dataset=dataset)

    return recommend


# Words that show an answer has the card's alternatives / similar runs (the judge's completeness).
_ALTERNATIVE_WORDS = ("faster", "alternative", "more accurate")
_SIMILAR_WORDS = ("similar", "past run", "previous run")
SIMILAR_SHOWN = 3


# --- the graph -----------------------------------------------------------------------------------

def build_advisor(model: BaseChatModel, tools: Sequence[BaseTool] | None = None,
                  checkpointer: Any = None, *, store: str | Path | None = None,
                  recommender: Recommender | None = None, max_steps: int = 8,
                  retries: int = 2, llm_extraction: str = "auto") -> Any:
    """The compiled advisor graph (see the module docstring).

    `model`: any LangChain chat model (tool calls written as text are normalized). `tools`: the
    tools (default `tools.get_tools(store)`); analyze_dataset, rank_configs, explain_config and
    similar_runs are needed, launch_training is optional. `checkpointer`: e.g. `open_checkpointer`
    (conversations resume per `thread_id`). `recommender(traits, budget, dataset)` returns the
    `Recommendation` (default: the store's advisor). `max_steps`: model/tool rounds per follow-up;
    `retries`: extra attempts of a structured extraction; `llm_extraction`: "auto" asks the LLM
    to extract only when the regexes may have missed something, "always" on every turn.
    """
    from knowledge.recommend import Recommendation
    from tools import get_tools

    tool_list = list(tools) if tools is not None else get_tools(store)
    by_name = {t.name: t for t in tool_list}
    missing = [n for n in ("analyze_dataset", "rank_configs", "explain_config", "similar_runs")
               if n not in by_name]
    if missing:
        raise ValueError(f"build_advisor needs the tools {', '.join(missing)}")
    if llm_extraction not in ("auto", "always"):
        raise ValueError(f"llm_extraction must be 'auto' or 'always', not {llm_extraction!r}")
    followup_names = [n for n in FOLLOWUP_TOOLS if n in by_name]
    recommender = recommender or default_recommender(store)
    extract_model = with_max_tokens(model, EXTRACT_TOKENS)
    ask_model = with_max_tokens(model, ASK_TOKENS)
    answer_model = with_max_tokens(model, ANSWER_TOKENS)
    followup_model = with_max_tokens(model, FOLLOWUP_TOKENS)
    try:
        bound_model = followup_model.bind_tools(
            slim_tools([n for n in SLIM_FOLLOWUP_TOOLS if n in by_name]))
    except NotImplementedError:  # a model without native tools: calls come back as text
        bound_model = followup_model

    def rec_of(state: AdvisorState) -> Any:
        return Recommendation.model_validate(state["recommendation"])

    def speed_first(state: AdvisorState) -> bool:
        return (state.get("constraints") or {}).get("preference") == "speed"

    def chosen_of(state: AdvisorState) -> Any:
        """The RankedConfig the answer presents (the faster one when the user wants speed)."""
        rec = rec_of(state)
        return rec.faster if speed_first(state) and rec.faster is not None else rec.best

    def sources(state: AdvisorState, extra: Sequence[str] = ()) -> list[str]:
        out = [o["output"] for o in state.get("tool_outputs") or []]
        out += [user_source(_text(m)) for m in state.get("messages") or []
                if isinstance(m, HumanMessage)]
        if state.get("recommendation"):
            out += prompts.recommendation_sources(rec_of(state))
        return [*out, *extra]

    # -- routing ----------------------------------------------------------------------------
    def decide(state: AdvisorState) -> str:
        traits = known_traits(state)
        text = _last_user_text(state)
        if state.get("recommendation") and _LAUNCH.search(text) and "?" not in text:
            return "propose_launch"
        if missing_traits(traits):
            return "ask"
        if not state.get("recommendation") or state.get("recommended_for") != state_key(state):
            return "recommend"
        return "agent"

    # -- nodes ------------------------------------------------------------------------------
    def extract(state: AdvisorState) -> dict[str, Any]:
        text = _last_user_text(state)
        update: dict[str, Any] = {"turn": (state.get("turn") or 0) + 1, "step": 0, "attempts": 0,
                                  "violations": [], "draft": None, "problem": None,
                                  "planned": False, "rejected": []}
        out_messages: list[BaseMessage] = []
        if state.get("awaiting_launch_confirmation"):
            update.update(awaiting_launch_confirmation=False)
            if _YES.fullmatch(text):
                update["route"] = "launch"
                return update
            update["pending_launch"] = None
            out_messages.append(AIMessage("OK, I did not start training (that needs an explicit "
                                          "'yes' right after I ask)."))
            if _NO.fullmatch(text):
                update.update(route=END, messages=out_messages)
                return update
        found = extract_turn(extract_model, text, pending=state.get("pending_question"),
                             known=known_traits(state), retries=retries,
                             always_llm=llm_extraction == "always")
        traits = dict(state.get("traits") or {})
        for key, value in found.traits().items():
            traits[key] = {"value": value, "source": "stated"}
        if counts := found.traits().get("class_counts"):
            # the counts imply the total and the number of classes (older values that contradict
            # them go; values stated with the counts stay) and the imbalance (computed from them)
            implied = {"n_instances": sum(counts), "n_classes": len(counts)}
            for key in ("n_instances", "n_classes", "imbalance_ratio"):
                if key not in found.traits():
                    traits.pop(key, None)
                    if key in implied:
                        traits[key] = {"value": implied[key], "source": "stated"}
        constraints = dict(state.get("constraints") or {})
        held = constraints.pop("unknown_budget", None)  # a clause whose device we asked about
        if found.budget:
            constraints["budget"] = _with_time_of(found.budget, held)
        if found.preference:
            constraints["preference"] = found.preference
        update.update(traits=traits, constraints=constraints, pending_question=None,
                      path_to_read=found.dataset_path)
        unknown = unknown_device(text)
        if unknown is not None and not (found.budget and _names_device(found.budget)):
            # a device the catalogue does not know: ask which it is (never assume a CPU)
            constraints["unknown_budget"] = unknown.clause
            update.update(pending_question="budget", route=END,
                          messages=[*out_messages, AIMessage(device_question(unknown))])
            return update
        if out_messages:
            update["messages"] = out_messages
        update["route"] = "analyze" if found.dataset_path else decide({**state, **update})
        return update

    def analyze(state: AdvisorState) -> dict[str, Any]:
        path = state.get("path_to_read")
        traits = dict(state.get("traits") or {})
        args: dict[str, Any] = {"path": path}
        if traits.get("modality"):
            args["modality"] = traits["modality"]["value"]
        output, messages, log_entry = _tool_exchange(by_name["analyze_dataset"], args, state["turn"])
        update: dict[str, Any] = {"messages": messages, "tool_outputs": [log_entry],
                                  "path_to_read": None}
        error = _error_of(output)
        if error:
            update["problem"] = f"I could not read the dataset {path!r}: {error}"
        else:
            for key, value in json.loads(output)["traits"].items():
                if value is not None and not (key == "modality" and value == "other"
                                              and traits.get("modality")):
                    traits[key] = {"value": value, "source": "measured"}
            update.update(traits=traits, dataset=path)
        update["route"] = decide({**state, **update})
        return update

    def ask(state: AdvisorState) -> dict[str, Any]:
        traits = known_traits(state)
        trait = missing_traits(traits)[0]
        question = None
        try:
            reply = ask_model.invoke([SystemMessage(prompts.ASK_SYSTEM),
                                      HumanMessage(prompts.ask_user(trait, traits))])
            text = _text(reply).strip()
            if (text and "?" in text and len(text) <= 400 and not getattr(reply, "tool_calls", None)
                    and "{" not in text and not check_answer(text, sources(state))):
                question = text
        except Exception as exc:  # noqa: BLE001 - the template asks instead
            log.warning("LLM question failed: %s", exc)
        question = question or prompts.TRAIT_QUESTIONS[trait]
        if state.get("problem"):
            question = f"{state['problem']}\n\n{question}"
        return {"messages": [AIMessage(question)], "pending_question": trait}

    def recommend(state: AdvisorState) -> dict[str, Any]:
        traits = dict(state.get("traits") or {})
        if "height" not in traits:
            traits["height"] = {"value": DEFAULT_HEIGHT, "source": "assumed"}
        values = {k: t["value"] for k, t in traits.items()}
        constraints = dict(state.get("constraints") or {})
        turn = state["turn"]
        messages: list[BaseMessage] = []
        logs: list[dict] = []
        problem = state.get("problem")

        def call(name: str, args: dict[str, Any]) -> str:
            output, msgs, entry = _tool_exchange(by_name[name], args, turn)
            messages.extend(msgs)
            logs.append(entry)
            return output

        ranked = call("rank_configs", {"traits": values, "top_k": 5,
                                       "budget": constraints.get("budget")})
        error = _error_of(ranked)
        if error and constraints.get("budget"):  # an unreadable budget: say so, rank without it
            problem = f"I ignored the budget {constraints['budget']!r}: {error}"
            constraints["budget"] = None
            ranked = call("rank_configs", {"traits": values, "top_k": 5, "budget": None})
            error = _error_of(ranked)
        update: dict[str, Any] = {"traits": traits, "constraints": constraints,
                                  "tool_outputs": logs, "messages": messages, "problem": problem}
        if error:
            update["messages"] = [*messages, AIMessage(
                f"I could not rank configs for these traits: {error}")]
            update["route"] = END
            return update
        try:
            rec = recommender(values, constraints.get("budget"), state.get("dataset"))
        except Exception as exc:  # noqa: BLE001 - a knowledge/ error is one line for the user
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            update["messages"] = [*messages, AIMessage(f"I could not make a recommendation: {first}")]
            update["route"] = END
            return update
        chosen = rec.faster if (constraints.get("preference") == "speed"
                                and rec.faster is not None) else rec.best
        call("explain_config", {"traits": values, "config": chosen.config.model_dump()})
        call("similar_runs", {"traits": values, "k": 5})
        update.update(recommendation=rec.model_dump(mode="json"), mode="recommend", route="answer",
                      recommended_for=state_key({**state, "traits": traits,
                                                 "constraints": constraints}))
        return update

    def answer(state: AdvisorState) -> dict[str, Any]:
        rec = rec_of(state)
        facts = prompts.recommendation_facts(rec, "faster" if speed_first(state) else "best",
                                             compact=True)
        if speed_first(state) and rec.faster is not None:  # why THIS config (not the best's)
            facts.update(_explained(state, rec.faster.config.model_dump()))
        draft = None
        attempts = (state.get("attempts") or 0) + 1
        try:
            reply = answer_model.invoke([SystemMessage(prompts.ANSWER_SYSTEM), HumanMessage(
                prompts.answer_user(facts, _last_user_text(state), state.get("violations")))])
            draft = _complete_lines(reply) or None
        except Exception as exc:  # noqa: BLE001 - the deterministic report stands in
            log.warning("LLM answer failed: %s", exc)
            attempts = MAX_DRAFTS  # a timeout or a dead server: no second try
        return {"draft": draft, "attempts": attempts}

    def context(state: AdvisorState) -> dict[str, Any]:
        out: dict[str, Any] = {"traits": known_traits(state),
                               "constraints": state.get("constraints") or {},
                               "dataset": state.get("dataset")}
        if state.get("recommendation"):
            out["recommendation"] = prompts.recommendation_facts(rec_of(state), compact=True)
        return out

    def pick_config(state: AdvisorState) -> dict[str, Any] | None:
        return chosen_of(state).config.model_dump() if state.get("recommendation") else None

    def tool_traits(state: AdvisorState) -> dict[str, Any]:
        traits = known_traits(state)
        if "height" not in traits:
            traits["height"] = DEFAULT_HEIGHT
        return traits

    def agent(state: AdvisorState) -> dict[str, Any]:
        from agent.toolcalls import normalize_ai_message

        step = (state.get("step") or 0) + 1
        if step > max_steps:
            log.warning("follow-up stopped after %d steps", max_steps)
            return {"step": step, "draft": None, "attempts": MAX_DRAFTS, "route": "ground"}
        if step == 1:  # a known model named: the graph calls explain_config, the LLM answers
            plan = planned_calls(_last_user_text(state), pick_config(state))
            if not plan and state.get("recommendation") and asks_why_pick(_last_user_text(state)):
                rec = rec_of(state)
                facts = {**prompts.recommendation_facts(rec, "faster" if speed_first(state)
                                                        else "best"),
                         "similar_past_runs":  # the short cards
                         prompts.recommendation_facts(rec, compact=True)["similar_past_runs"]}
                return {"step": step, "draft": why_pick_answer(facts), "mode": "followup",
                        "attempts": (state.get("attempts") or 0) + 1, "route": "ground"}
            if plan:
                calls = [{**c, "id": _call_id(), "type": "tool_call"} for c in plan]
                return {"step": step, "planned": True, "route": "tools",
                        "messages": [AIMessage(content="", tool_calls=calls)]}
        planned = bool(state.get("planned"))
        system = SystemMessage(prompts.FOLLOWUP_SYSTEM
                               + (prompts.FOLLOWUP_NO_TOOLS if planned else "") + "\n\n"
                               + prompts.followup_context(context(state), state.get("violations")))
        try:
            llm = followup_model if planned else bound_model
            reply = llm.invoke([system, *llm_history(state.get("messages", []))])
            reply = normalize_ai_message(reply, followup_names + ["launch_training"])
        except Exception as exc:  # noqa: BLE001 - the fallback answer stands in
            log.warning("LLM follow-up failed: %s", exc, exc_info=True)
            return {"step": step, "draft": None, "attempts": MAX_DRAFTS, "route": "ground"}
        if isinstance(reply, AIMessage) and reply.tool_calls:
            return {"step": step, "messages": [reply], "route": "tools", "planned": False}
        return {"step": step, "draft": _complete_lines(reply) or None, "mode": "followup",
                "attempts": (state.get("attempts") or 0) + 1, "route": "ground"}

    def run_tools(state: AdvisorState) -> dict[str, Any]:
        last = state["messages"][-1]
        results: list[BaseMessage] = []
        logs: list[dict] = []
        for call in getattr(last, "tool_calls", []):
            name, args = call["name"], call.get("args") or {}
            real = args
            if name == "launch_training":
                output = json.dumps({"error": "launch_training is not available to you: training "
                                              "starts only when the user says 'launch it' and then "
                                              "confirms with 'yes'"})
            elif name not in followup_names:
                output = json.dumps({"error": f"unknown tool {name!r}; available: "
                                              f"{', '.join(followup_names)}"})
            elif not isinstance(args, dict):
                output = json.dumps({"error": "tool arguments must be a JSON object"})
            else:
                real = tool_args(name, args, tool_traits(state), pick_config(state))
                if isinstance(real, str):
                    output, real = json.dumps({"error": f"bad arguments for {name}: {real}"}), args
                else:
                    output = _invoke(by_name[name], real)
            results.append(ToolMessage(content=output, tool_call_id=call["id"], name=name))
            logs.append({"tool": name, "args": real if isinstance(real, dict) else {},
                         "output": output, "turn": state["turn"]})
        return {"messages": results, "tool_outputs": logs}

    def ground(state: AdvisorState) -> dict[str, Any]:
        draft = state.get("draft")
        pick: dict[str, Any] | None = None
        pick_sources: list[str] = []
        unstated: list[Any] = []
        if draft and state.get("mode") == "recommend" and state.get("recommendation"):
            pick = pick_config(state)
            pick_sources = prompts.pick_sources(rec_of(state), speed_first(state))
            # a turn that delivers a recommendation must state it (follow-ups need not restate)
            chosen = chosen_of(state)
            unstated = unstated_pick(draft, pick, accuracy_pct=100 * chosen.predicted_acc,
                                     seconds=chosen.predicted_seconds)
        violations = [str(v) for v in [
            *check_answer(draft, sources(state), pick=pick, pick_sources=pick_sources),
            *launch_violations(draft, launched_ok(state.get("tool_outputs") or [])),
            *unstated]
        ] if draft else ["(no answer)"]
        if draft and not violations:
            return {"messages": [AIMessage(_with_notes(_completed(draft, state), state))],
                    "route": END, "violations": [], "draft": None}
        log.info("answer not grounded (%s); attempt %d", ", ".join(violations),
                 state.get("attempts") or 0)
        rejected = [*(state.get("rejected") or []), {"draft": draft, "violations": violations}]
        if (state.get("attempts") or 0) < MAX_DRAFTS:
            return {"violations": violations, "rejected": rejected,
                    "route": "answer" if state.get("mode") == "recommend" else "agent"}
        return {"messages": [AIMessage(_with_notes(fallback(state), state))], "route": END,
                "violations": violations, "draft": None, "rejected": rejected}

    def fallback(state: AdvisorState) -> str:
        if state.get("mode") == "recommend" or not state.get("recommendation"):
            if not state.get("recommendation"):
                return "I could not produce a verified answer; please rephrase the question."
            rec = rec_of(state)
            head = ""
            if speed_first(state) and rec.faster:
                from knowledge.recommend import config_label

                head = (f"You asked for speed: the faster alternative is **{config_label(rec.faster)}**"
                        f" (see Alternatives below).\n\n")
            return head + rec.to_markdown()
        turn_outputs = [o for o in state.get("tool_outputs") or [] if o["turn"] == state["turn"]]
        lines = ["I could not verify my own wording against the tool outputs, so here is what the "
                 "tools returned:"]
        lines += [f"- `{o['tool']}`: {o['output'][:1500]}" for o in turn_outputs] or [
            "- (no tool was called)"]
        return "\n".join(lines)

    def _completed(text: str, state: AdvisorState) -> str:
        """A grounded recommendation answer with the card's own alternatives and similar runs
        appended when the model left them out (small models often stop after the config)."""
        if state.get("mode") != "recommend" or not state.get("recommendation"):
            return text
        rec = rec_of(state)
        lowered = text.lower()
        parts = [text]
        if not any(w in lowered for w in _ALTERNATIVE_WORDS):
            parts.append("\n".join(["### Alternatives", *rec.alternative_lines(pareto=False)]))
        if not any(w in lowered for w in _SIMILAR_WORDS) and rec.similar_runs:
            parts.append("\n".join(["### Similar past runs", *rec.similar_run_lines(SIMILAR_SHOWN)]))
        return "\n\n".join(parts)

    def _with_notes(text: str, state: AdvisorState) -> str:
        notes = []
        if state.get("problem"):
            notes.append(state["problem"])
        height = (state.get("traits") or {}).get("height")
        if state.get("mode") == "recommend" and height and height["source"] == "assumed":
            notes.append(f"You did not give the image size, so I assumed {height['value']} px; "
                         "tell me the real size to refine this.")
        return text + ("\n\n" + "\n".join(f"_Note: {n}_" for n in notes) if notes else "")

    def propose_launch(state: AdvisorState) -> dict[str, Any]:
        if "launch_training" not in by_name:
            return {"messages": [AIMessage("Training is disabled in this session.")]}
        if not state.get("dataset"):
            return {"messages": [AIMessage(
                "To launch training I need the dataset itself: give the path of its file or "
                "folder (inside the allowed data folders), then ask again.")]}
        from knowledge.metalearner.budget import format_seconds
        from knowledge.recommend import config_label

        pick = chosen_of(state)
        launch = {"dataset": state["dataset"], "config": pick.config.model_dump()}
        text = (f"I can train **{config_label(pick)}** on `{state['dataset']}` now (predicted "
                f"~{format_seconds(pick.predicted_seconds)} on {pick.device}). Shall I start it? "
                "Reply **yes** to launch; anything else cancels.")
        return {"messages": [AIMessage(text)], "awaiting_launch_confirmation": True,
                "pending_launch": launch}

    def launch(state: AdvisorState) -> dict[str, Any]:
        args = {**(state.get("pending_launch") or {}), "confirmed": True}
        output, messages, entry = _tool_exchange(by_name["launch_training"], args, state["turn"])
        error = _error_of(output)
        if error:
            text = f"Training did not run: {error}"
            run = None
        else:
            run = json.loads(output)
            acc = run.get("test_acc_pct")
            text = (f"Training finished with status **{run.get('status')}** (run "
                    f"`{run.get('run_id')}`)" + (f": test accuracy {acc} %." if acc is not None
                                                 else ".") + f"\n\n{run.get('card', '')}".rstrip())
        return {"messages": [*messages, AIMessage(text)], "tool_outputs": [entry],
                "launched_run": run, "pending_launch": None, "awaiting_launch_confirmation": False}

    graph = StateGraph(AdvisorState)
    for name, node in (("extract", extract), ("analyze", analyze), ("ask", ask),
                       ("recommend", recommend), ("answer", answer), ("agent", agent),
                       ("tools", run_tools), ("ground", ground),
                       ("propose_launch", propose_launch), ("launch", launch)):
        graph.add_node(name, timed(name, node))
    graph.add_edge(START, "extract")
    by_route = lambda state: state.get("route") or END  # noqa: E731
    graph.add_conditional_edges("extract", by_route, ["analyze", "ask", "recommend", "agent",
                                                      "propose_launch", "launch", END])
    graph.add_conditional_edges("analyze", by_route, ["ask", "recommend", "agent",
                                                      "propose_launch"])
    graph.add_conditional_edges("recommend", by_route, ["answer", END])
    graph.add_edge("answer", "ground")
    graph.add_conditional_edges("agent", by_route, ["tools", "ground"])
    graph.add_edge("tools", "agent")
    graph.add_conditional_edges("ground", by_route, ["answer", "agent", END])
    for name in ("ask", "propose_launch", "launch"):
        graph.add_edge(name, END)
    compiled = graph.compile(checkpointer=checkpointer, name="metallmix-advisor")
    return compiled.with_config(recursion_limit=2 * max_steps + 4 * MAX_DRAFTS + 20)


def _explained(state: AdvisorState, config: dict[str, Any]) -> dict[str, Any]:
    """The 'why' facts of `config` from this turn's explain_config output (empty if none)."""
    from knowledge.explain import Factor

    for out in reversed(state.get("tool_outputs") or []):
        if out["tool"] != "explain_config" or out["turn"] != state.get("turn") \
                or out["args"].get("config") != config:
            continue
        try:
            data = json.loads(out["output"])
            factors = [Factor(feature=f["factor"], label=f["factor"], value_text=f["value"],
                              contribution_points=f["points"]).text for f in data["factors"]]
            return {"why": factors[:prompts.COMPACT_WHY],
                    "average_over_past_runs_pct": data["average_over_past_runs_pct"]}
        except (ValueError, KeyError, TypeError):
            return {}
    return {}


# The answer prompt's hints, which a small model copies into its lines.
_TEMPLATE_ECHO = re.compile(
    r"\s*(?:" + "|".join(re.escape(h) for h in prompts.ANSWER_HINTS) + r")\s*[.:]?", re.IGNORECASE)


def _complete_lines(reply: BaseMessage) -> str:
    """The reply's text without echoed prompt instructions; when the reply cap cut it mid-line,
    without the cut line."""
    text = _text(reply).strip()
    if (getattr(reply, "response_metadata", None) or {}).get("finish_reason") == "length":
        text = text.rsplit("\n", 1)[0].rstrip() if "\n" in text else text
    text = _TEMPLATE_ECHO.sub(" ", text).replace(":  ", ": ")
    return re.sub(r"(?im)^\s*notes:\s*$\n?", "", text).strip()  # a "Notes:" left empty


# --- conversations -------------------------------------------------------------------------------

def open_checkpointer(path: str | Path) -> Any:
    """A SQLite checkpointer (conversations resume by thread_id across processes). Its connection
    is `.conn` (close it when done). Raises StoreError (one line) when the file cannot be opened."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False)
        saver = SqliteSaver(conn)
        saver.setup()
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the conversation store {path}: {exc}") from None
    return saver


def thread_config(thread_id: str) -> dict[str, Any]:
    """The invoke config of one conversation (one thread per user)."""
    return {"configurable": {"thread_id": thread_id}}


def advise(graph: Any, text: str, thread_id: str = "default") -> str:
    """Send one user message on `thread_id` and return the advisor's reply (all AI text of the turn)."""
    before = len(graph.get_state(thread_config(thread_id)).values.get("messages", [])) if (
        graph.checkpointer is not None) else 0
    state = graph.invoke({"messages": [HumanMessage(text)]}, thread_config(thread_id))
    return reply_text(state["messages"][before:])


def reply_text(messages: Sequence[BaseMessage]) -> str:
    """The text the user sees: AI messages without tool calls, joined."""
    return "\n\n".join(_text(m) for m in messages
                       if isinstance(m, AIMessage) and not m.tool_calls and _text(m).strip())


def transcript(state: dict[str, Any]) -> dict[str, Any]:
    """A finished conversation as JSON-ready data (what the judge grades)."""
    messages = []
    for m in state.get("messages") or []:
        item: dict[str, Any] = {"role": m.type, "content": _text(m)}
        if isinstance(m, AIMessage) and m.tool_calls:
            item["tool_calls"] = [{"name": c["name"], "args": c["args"]} for c in m.tool_calls]
        if isinstance(m, ToolMessage):
            item["name"] = m.name
        messages.append(item)
    answers = [m for m in messages if m["role"] == "ai" and not m.get("tool_calls")]
    return {"messages": messages, "traits": state.get("traits") or {},
            "constraints": state.get("constraints") or {},
            "recommendation": state.get("recommendation"),
            "tool_outputs": list(state.get("tool_outputs") or []),
            "answer": answers[-1]["content"] if answers else "",
            "launched_run": state.get("launched_run")}


__all__ = ["ANSWER_TOKENS", "ASK_TOKENS", "DEFAULT_HEIGHT", "EXTRACT_TOKENS", "FOLLOWUP_TOKENS",
           "FOLLOWUP_TOOLS", "SLIM_FOLLOWUP_TOOLS", "advise", "build_advisor",
           "default_recommender", "missing_traits", "open_checkpointer", "reply_text",
           "thread_config", "transcript"]
