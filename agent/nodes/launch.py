"""`propose_launch` ("launch it": asks for an explicit yes) and `launch` (only after that yes, in
the NEXT user turn: the one node that calls launch_training, with confirmed=true)."""

from __future__ import annotations

import json
import re
from typing import Any

from langchain_core.messages import AIMessage

from agent.nodes.runtime import (
    Runtime,
    chosen_of,
    error_of,
    log,
    recorded,
    tool_exchange,
    tool_traits,
)
from agent.state import AdvisorState
from knowledge.metalearner.budget import format_seconds
from knowledge.recommend import config_label
from tools.advice import rank_output

# a launch_training error that says the pretrained weights cannot be had here
_WEIGHTS = re.compile(r"pretrained weights|weights for \S+ are not available|could not download",
                      re.IGNORECASE)


def propose_launch(state: AdvisorState, rt: Runtime) -> dict[str, Any]:
    if "launch_training" not in rt.tools:
        return {"messages": [AIMessage("Training is disabled in this session.")]}
    if not state.get("dataset"):
        return {"messages": [AIMessage(
            "To launch training I need the dataset itself: give the path of its file or "
            "folder (inside the allowed data folders), then ask again.")]}
    pick = chosen_of(state)
    launch_args = {"dataset": state["dataset"], "config": pick.config.model_dump()}
    text = (f"I can train **{config_label(pick)}** on `{state['dataset']}` now (predicted "
            f"~{format_seconds(pick.predicted_seconds)} on {pick.device}). Shall I start it? "
            "Reply **yes** to launch; anything else cancels.")
    return {"messages": [AIMessage(text)], "awaiting_launch_confirmation": True,
            "pending_launch": launch_args}


def launch(state: AdvisorState, rt: Runtime) -> dict[str, Any]:
    args = {**(state.get("pending_launch") or {}), "confirmed": True}
    output, messages, entry = tool_exchange(rt.tools["launch_training"], args, state["turn"])
    error = error_of(output)
    if error and _WEIGHTS.search(error) and (args.get("config") or {}).get("pretrained"):
        offer = _runnable_alternative(state, rt, args)
        if offer is not None:  # offered at once: the user only has to say yes
            text, launch_args, ranked_msgs, ranked_entry = offer
            return {"messages": [*messages, *ranked_msgs,
                                 AIMessage(f"Training did not run: {error}\n\n{text}")],
                    "tool_outputs": [entry, ranked_entry], "launched_run": None,
                    "pending_launch": launch_args, "awaiting_launch_confirmation": True}
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


def _runnable_alternative(state: AdvisorState, rt: Runtime,
                          failed: dict[str, Any]) -> tuple[str, dict[str, Any], list, dict] | None:
    """The best config that trains here without downloading weights (the ranking with
    `pretrained` False and the same budget): the proposal text, its launch arguments, and the
    rank_configs call that backs it (messages and tool-output entry: the grounding sources)."""
    constraints = state.get("constraints") or {}
    require = {**(constraints.get("require") or {}), "pretrained": False}
    values = tool_traits(state)
    try:
        rec = rt.recommender(values, constraints.get("budget"), state.get("dataset"),
                             require=require)
    except Exception as exc:  # noqa: BLE001 - no alternative: the error alone is reported
        log.warning("no runnable alternative: %s", exc)
        return None
    msgs, entry = recorded("rank_configs", {"traits": values, "top_k": 5,
                                            "budget": constraints.get("budget"),
                                            "require": require},
                           json.dumps(rank_output(rec), default=str), state["turn"])
    alt = rec.best
    launch_args = {"dataset": failed.get("dataset") or state.get("dataset"),
                   "config": alt.config.model_dump()}
    support = f" It is {alt.support.text()}." if alt.support is not None else ""
    text = (f"The best config that trains here without pretrained weights is "
            f"**{config_label(alt)}**: predicted accuracy {round(100 * alt.predicted_acc, 1)} % "
            f"in ~{format_seconds(alt.predicted_seconds)} on {alt.device}.{support} Shall I start "
            "it instead? Reply **yes** to launch; anything else cancels.")
    return text, launch_args, msgs, entry
