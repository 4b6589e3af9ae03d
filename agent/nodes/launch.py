"""`propose_launch` ("launch it": asks for an explicit yes) and `launch` (only after that yes, in
the NEXT user turn: the one node that calls launch_training, with confirmed=true)."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage

from agent.nodes.runtime import Runtime, chosen_of, error_of, tool_exchange
from agent.state import AdvisorState


def propose_launch(state: AdvisorState, rt: Runtime) -> dict[str, Any]:
    if "launch_training" not in rt.tools:
        return {"messages": [AIMessage("Training is disabled in this session.")]}
    if not state.get("dataset"):
        return {"messages": [AIMessage(
            "To launch training I need the dataset itself: give the path of its file or "
            "folder (inside the allowed data folders), then ask again.")]}
    from knowledge.metalearner.budget import format_seconds
    from knowledge.recommend import config_label

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
