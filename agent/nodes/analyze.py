"""`analyze`: read the dataset the message named (analyze_dataset enforces the data roots) and
keep its measured traits."""

from __future__ import annotations

import json
from typing import Any

from agent.nodes.runtime import Runtime, error_of, tool_exchange
from agent.state import AdvisorState


def analyze(state: AdvisorState, rt: Runtime) -> dict[str, Any]:
    path = state.get("path_to_read")
    traits = dict(state.get("traits") or {})
    args: dict[str, Any] = {"path": path}
    if traits.get("modality"):
        args["modality"] = traits["modality"]["value"]
    output, messages, log_entry = tool_exchange(rt.tools["analyze_dataset"], args, state["turn"])
    update: dict[str, Any] = {"messages": messages, "tool_outputs": [log_entry],
                              "path_to_read": None}
    error = error_of(output)
    if error:
        update["problem"] = f"I could not read the dataset {path!r}: {error}"
    else:
        for key, value in json.loads(output)["traits"].items():
            if value is not None and not (key == "modality" and value == "other"
                                          and traits.get("modality")):
                traits[key] = {"value": value, "source": "measured"}
        update.update(traits=traits, dataset=path)
    return update
