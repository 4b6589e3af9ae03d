"""The simulated user: a `simulate: true` turn's words, generated from the persona and the truth.

    text, said = template_reply(truth, pending="n_classes")    # ("4 classes.", {"n_classes": 4})
    text = llm_reply(model, scenario, assistant_said)           # a real LLM plays the persona

With a real LLM the user's reply is written by an LLM (the judge's, else the advisor's) told the
persona, the true facts and the assistant's last message; it may state only those facts. With the
scripted backend, and whenever the LLM fails, the reply is a template answering the question the
agent asked (`pending`, from the graph's state) with the true value, and `said` is exactly what it
states (what the scripted model then extracts).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage, SystemMessage

from eval.agent.scenario import Scenario, Truth

log = logging.getLogger(__name__)

USER_SYSTEM = (
    "You play a person who wants to train an image classifier and is chatting with an assistant "
    "that recommends a model. Stay in character. Reply to the assistant's last message in one or "
    "two short sentences, as this person would type them. State only facts from FACTS (JSON); if "
    "asked something FACTS does not cover, say you do not know. Never invent numbers.")


def _phrase(trait: str, value: Any) -> str:
    if trait == "n_instances":
        return f"about {value:,} images"
    if trait == "n_classes":
        return f"{value} classes"
    if trait == "modality":
        return f"{value} images"
    if trait == "height":
        return f"{value} px"
    if trait == "channels":
        return "grayscale" if value == 1 else "colour"
    return f"{trait} {value}"


def template_reply(truth: Truth, pending: str | None) -> tuple[str, dict[str, Any]]:
    """The persona's answer to the question about `pending` (or a summary of every core trait
    when nothing is pending) and the traits it states."""
    traits = truth.traits
    if pending and traits.get(pending) is not None:
        said = {pending: traits[pending]}
    else:
        said = {k: traits[k] for k in ("n_instances", "n_classes", "modality", "height", "channels")
                if traits.get(k) is not None}
    if not said:
        return "I don't know.", {}
    text = ", ".join(_phrase(k, v) for k, v in said.items())
    return text[0].upper() + text[1:] + ".", said


def llm_reply(model: BaseChatModel, scenario: Scenario, assistant_said: str) -> str | None:
    """The LLM's reply in the persona's voice, or None when it fails or says nothing."""
    facts = {**scenario.truth.traits}
    if scenario.truth.budget is not None:
        facts["budget"] = scenario.truth.budget.model_dump(exclude_none=True)
    if scenario.truth.preference:
        facts["preference"] = scenario.truth.preference
    messages = [SystemMessage(f"{USER_SYSTEM}\nPERSONA: {scenario.persona}\nFACTS (JSON): "
                              f"{json.dumps(facts)}"),
                HumanMessage(f"The assistant said:\n<<<\n{assistant_said or '(nothing yet)'}\n>>>\n"
                             "Your reply, as the person:")]
    try:
        from agent.toolcalls import message_text

        text = message_text(model.invoke(messages)).strip().strip('"')
    except Exception as exc:  # noqa: BLE001 - the template stands in
        log.warning("simulated user failed: %s", exc)
        return None
    return text[:600] or None


__all__ = ["USER_SYSTEM", "llm_reply", "template_reply"]
