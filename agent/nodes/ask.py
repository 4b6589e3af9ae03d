"""`ask`: one question for the most important required trait still missing."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

from agent import prompts
from agent.grounding import check_answer
from agent.nodes.answer import language_line
from agent.nodes.runtime import Runtime, log, missing_traits, sources, text_of
from agent.state import AdvisorState, known_traits


def ask(state: AdvisorState, rt: Runtime) -> dict[str, Any]:
    """The LLM's question when it is one short grounded question, else the template's."""
    traits = known_traits(state)
    trait = missing_traits(traits)[0]
    question = None
    try:
        reply = rt.ask_model.invoke([SystemMessage(prompts.ASK_SYSTEM + language_line(state)),
                                     HumanMessage(prompts.ask_user(trait, traits))])
        text = text_of(reply).strip()
        if (text and "?" in text and len(text) <= 400 and not getattr(reply, "tool_calls", None)
                and "{" not in text and not check_answer(text, sources(state))):
            question = text
    except Exception as exc:  # noqa: BLE001 - the template asks instead
        log.warning("LLM question failed: %s", exc)
    question = question or prompts.TRAIT_QUESTIONS[trait]
    if state.get("problem"):
        question = f"{state['problem']}\n\n{question}"
    return {"messages": [AIMessage(question)], "pending_question": trait}
