"""`plan`: a follow-up kind the graph answers itself (`agent.intents`), with the tool calls it
needs recorded as grounding sources and the answer written from their numbers (`agent.answers`):

- out of scope (segmentation, detection, 3-D, text, ...): one sentence saying what the advisor does;
- "why X and not Y?": explain_config of Y with the presented config's other settings, then both
  predictions and the settings that differ (never the dataset's traits);
- "what learning rate / batch / epochs for model M?": the ranking constrained to M (rank_configs
  with `require`), its values and support;
- "how long on device D?": the SAME config re-costed on D (rank_configs with the config required);
- "give me the command": the real `metallmix train` line of the presented config.

Anything else goes to the LLM's follow-up loop (`agent`).
"""

from __future__ import annotations

import json
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langgraph.graph import END

from agent import answers, facts
from agent.intents import Intent, read_intent, scope_reply
from agent.nodes.runtime import (
    MAX_DRAFTS,
    Runtime,
    chosen_of,
    error_of,
    last_user_text,
    preference,
    rec_of,
    recorded,
    tool_exchange,
    tool_traits,
)
from agent.state import AdvisorState
from agent.translate import translated
from knowledge.search_space import MODELS
from tools.advice import rank_output

#: the kinds `plan` answers (with a recommendation; out_of_scope also without)
PLANNED = ("out_of_scope", "command", "device_time", "hyperparameter", "why_not")


def intent_of(state: AdvisorState) -> Intent:
    """The latest message's intent, relative to the presented config."""
    return read_intent(last_user_text(state), pick_model(state))


def pick_model(state: AdvisorState) -> str | None:
    """The recommended model (of the recommendation's JSON, without validating all of it)."""
    rec = state.get("recommendation") or {}
    return ((rec.get("best") or {}).get("config") or {}).get("model")


def plans(state: AdvisorState) -> bool:
    """Whether `plan` answers the latest message."""
    kind = intent_of(state).kind
    return kind == "out_of_scope" or (kind in PLANNED and bool(state.get("recommendation")))


def plan(state: AdvisorState, rt: Runtime) -> dict[str, Any]:
    """The answer's draft (`mode` "plan", for `ground`) with the tool calls behind it."""
    intent = intent_of(state)
    if intent.kind == "out_of_scope":
        reply = scope_reply(intent.task or "that")
        reply = translated(rt.translate_model, reply, state.get("language")) or reply
        return {"messages": [AIMessage(reply)], "route": END, "draft": None, "mode": "plan"}
    turn = state["turn"]
    messages: list[BaseMessage] = []
    logs: list[dict[str, Any]] = []
    pick = chosen_of(state)
    pick_facts = facts.ranked_facts(pick)
    assert pick_facts is not None

    def rank(budget: str | None, require: dict[str, Any]) -> Any:
        """The recommender's answer under `require` (recorded as a rank_configs call)."""
        values = tool_traits(state)
        args = {"traits": values, "top_k": 1, "budget": budget, "require": require}
        try:
            rec = rt.recommender(values, budget, state.get("dataset"), require=require)
            output = json.dumps(rank_output(rec), default=str)
        except Exception as exc:  # noqa: BLE001 - a ConfigError / DatasetError: say it
            rec, output = None, json.dumps({"error": str(exc).splitlines()[0]})
        msgs, entry = recorded("rank_configs", args, output, turn)
        messages.extend(msgs)
        logs.append(entry)
        return rec, error_of(output)

    budget = (state.get("constraints") or {}).get("budget")
    focus_update: dict[str, Any] = {"focus": None}  # the model discussed (hyperparameter what-ifs)
    if intent.kind == "command":
        seconds = rec_of(state).budget.max_seconds if rec_of(state).budget else None
        draft = answers.command_answer(pick_facts, state.get("dataset"), time_budget_s=seconds,
                                       modality=tool_traits(state).get("modality"))
    elif intent.kind == "device_time":
        rec, error = rank(intent.device, pick.config.model_dump())
        if error or rec is None:
            draft = f"I could not re-cost the config on {intent.device}: {error}"
        else:
            same = facts.ranked_facts(rec.best)
            draft = answers.device_time_answer(same, pick_facts, rec.best.device, rec.memory)
    elif intent.kind == "hyperparameter":
        # "how many epochs for that?" right after "what lr for a ResNet-50?": the model discussed
        focus = state.get("focus") or {}
        model = intent.models[0] if intent.models else focus.get("model", pick.config.model)
        require: dict[str, Any] = {"model": model}
        pretrained = intent.pretrained if intent.pretrained is not None else (
            focus.get("pretrained") if not intent.models else None)
        if pretrained is not None:
            require["pretrained"] = pretrained
        focus_update = {"focus": require if model != pick.config.model else None}
        same = model == pick.config.model and require.get("pretrained", pick.config.pretrained) \
            == pick.config.pretrained
        if same:
            draft = answers.hyperparameter_answer(pick_facts, list(intent.params), is_pick=True)
        else:
            rec, error = rank(budget, require)
            if error or rec is None:
                draft = f"I could not rank configs for {MODELS[model].label}: {error}"
            else:
                best = facts.chosen(rec, preference(state))
                draft = answers.hyperparameter_answer(
                    facts.ranked_facts(best), list(intent.params), is_pick=False,
                    asked_model=MODELS[model].label)
    else:  # why_not
        if not intent.models:
            rec = rec_of(state)
            known = list(dict.fromkeys(r.config.spec.label for r in [*rec.top, rec.faster,
                                                                      rec.more_accurate]
                                       if r is not None and r.config.model != pick.config.model))
            draft = answers.unknown_model_answer(intent.unknown_models, pick_facts, known[:3])
        else:
            other_config = {**pick.config.model_dump(), "model": intent.models[0]}
            if intent.pretrained is not None:
                other_config["pretrained"] = intent.pretrained
            output, msgs, entry = tool_exchange(
                rt.tools["explain_config"], {"traits": tool_traits(state), "config": other_config,
                                             **({"budget": budget} if budget else {})}, turn)
            messages.extend(msgs)
            logs.append(entry)
            other = json.loads(output)
            if error_of(output):
                draft = f"I could not predict {MODELS[intent.models[0]].label}: {error_of(output)}"
            else:
                other_facts = {**_facts_of_explained(other, other_config)}
                mine = _pick_explained(state)
                draft = answers.compare_answer(pick_facts, other_facts, pick_explained=mine,
                                               other_explained=other)
    # written from the tools' numbers: no LLM retry (a draft that fails the check -> the fallback)
    return {"messages": messages, "tool_outputs": logs, "draft": draft, "mode": "plan",
            "attempts": MAX_DRAFTS, **focus_update}


def _facts_of_explained(out: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """An explain_config output as ranked facts (the tool writes the same keys)."""
    spec = MODELS[config["model"]]
    return {"model": config["model"], "model_name": out.get("model_name", spec.label),
            "pretrained": config.get("pretrained"), "scheme": config.get("scheme"),
            "resolution_px": config.get("resolution"), "optimizer": config.get("optimizer"),
            "lr": config.get("lr"), "weight_decay": config.get("weight_decay"),
            "batch_size": config.get("batch_size"), "epochs": config.get("epochs"),
            "augmentation": config.get("augmentation"),
            "label_smoothing": config.get("label_smoothing"),
            "predicted_accuracy_pct": out["predicted_accuracy_pct"],
            "interval_80_pct": out["interval_80_pct"], "training_time": out["training_time"],
            **({"evidence": out["evidence"]} if out.get("evidence") else {})}


def _pick_explained(state: AdvisorState) -> dict[str, Any] | None:
    """The latest explain_config output about the presented config (the recommend turn's)."""
    model = chosen_of(state).config.model
    for entry in reversed(state.get("tool_outputs") or []):
        if entry["tool"] == "explain_config" and (entry["args"].get("config") or {}).get("model") == model:
            try:
                return json.loads(entry["output"])
            except ValueError:
                return None
    return None


__all__ = ["PLANNED", "intent_of", "pick_model", "plan", "plans"]
