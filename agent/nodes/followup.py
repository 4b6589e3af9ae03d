"""`agent` <-> `tools`: the bounded tool-calling loop of a follow-up question (`agent.followup`:
slim tool specs; the graph fills in the traits and the recommended config; launch_training is not
among the tools; tool errors go back to the model as tool messages)."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, SystemMessage, ToolMessage

from agent import facts, prompts
from agent.followup import asks_why_pick, llm_history, planned_calls, tool_args, why_pick_answer
from agent.nodes.answer import complete_lines, language_line
from agent.nodes.runtime import (
    MAX_DRAFTS,
    Runtime,
    call_id,
    context,
    invoke,
    last_user_text,
    log,
    pick_config,
    preference,
    rec_of,
    tool_traits,
)
from agent.state import AdvisorState
from agent.toolcalls import normalize_ai_message


def agent(state: AdvisorState, rt: Runtime) -> dict[str, Any]:
    """One round: tool calls (the model's, or the graph's plan for a named model) or a draft."""
    step = (state.get("step") or 0) + 1
    if step > rt.max_steps:
        log.warning("follow-up stopped after %d steps", rt.max_steps)
        return {"step": step, "draft": None, "attempts": MAX_DRAFTS}
    if step == 1:  # a known model named: the graph calls explain_config, the LLM answers
        plan = planned_calls(last_user_text(state), pick_config(state))
        if not plan and state.get("recommendation") and asks_why_pick(last_user_text(state)):
            rec = rec_of(state)
            fact_sheet = {**facts.recommendation_facts(rec, preference(state)),
                          "similar_past_runs":  # the short cards
                          facts.recommendation_facts(rec, compact=True)["similar_past_runs"]}
            return {"step": step, "draft": why_pick_answer(fact_sheet), "mode": "followup",
                    "attempts": (state.get("attempts") or 0) + 1}
        if plan:
            calls = [{**c, "id": call_id(), "type": "tool_call"} for c in plan]
            return {"step": step, "planned": True,
                    "messages": [AIMessage(content="", tool_calls=calls)]}
    planned = bool(state.get("planned"))
    system = SystemMessage(prompts.FOLLOWUP_SYSTEM
                           + (prompts.FOLLOWUP_NO_TOOLS if planned else "") + "\n\n"
                           + prompts.followup_context(context(state), state.get("violations"))
                           + language_line(state))
    try:
        llm = rt.followup_model if planned else rt.bound_model
        reply = llm.invoke([system, *llm_history(state.get("messages", []))])
        reply = normalize_ai_message(reply, rt.followup_names + ["launch_training"])
    except Exception as exc:  # noqa: BLE001 - the fallback answer stands in
        log.warning("LLM follow-up failed: %s", exc, exc_info=True)
        return {"step": step, "draft": None, "attempts": MAX_DRAFTS}
    if isinstance(reply, AIMessage) and reply.tool_calls:
        return {"step": step, "messages": [reply], "planned": False}
    return {"step": step, "draft": complete_lines(reply) or None, "mode": "followup",
            "attempts": (state.get("attempts") or 0) + 1}


def run_tools(state: AdvisorState, rt: Runtime) -> dict[str, Any]:
    """The last message's tool calls, run (with the graph's traits / config filled in)."""
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
        elif name not in rt.followup_names:
            output = json.dumps({"error": f"unknown tool {name!r}; available: "
                                          f"{', '.join(rt.followup_names)}"})
        elif not isinstance(args, dict):
            output = json.dumps({"error": "tool arguments must be a JSON object"})
        else:
            real = tool_args(name, args, tool_traits(state), pick_config(state))
            if isinstance(real, str):
                output, real = json.dumps({"error": f"bad arguments for {name}: {real}"}), args
            else:
                output = invoke(rt.tools[name], real)
        results.append(ToolMessage(content=output, tool_call_id=call["id"], name=name))
        logs.append({"tool": name, "args": real if isinstance(real, dict) else {},
                     "output": output, "turn": state["turn"]})
    return {"messages": results, "tool_outputs": logs}
