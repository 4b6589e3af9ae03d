"""`answer`: the LLM writes the recommendation from compact facts (a draft for `ground`)."""

from __future__ import annotations

import json
import re
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from agent import facts, localize, prompts
from agent.language import instruction
from agent.nodes.runtime import MAX_DRAFTS, Runtime, last_user_text, log, preference, rec_of, speed_first, text_of
from agent.state import AdvisorState
from knowledge.explain import Factor


def answer(state: AdvisorState, rt: Runtime) -> dict[str, Any]:
    rec = rec_of(state)
    fact_sheet = facts.recommendation_facts(rec, preference(state), compact=True)
    fast = facts.speed_pick(rec)
    if speed_first(state) and fast is not None:  # why THIS config (not the best's)
        fact_sheet.update(explained(state, fast.config.model_dump()))
    draft = None
    attempts = (state.get("attempts") or 0) + 1
    if localize.supported(state.get("language")):  # the card in the user's language, by the graph
        return {"draft": localize.card(fact_sheet, state["language"],
                                       faster_within=rec.faster_within_points), "attempts": attempts}
    try:
        system = SystemMessage(prompts.ANSWER_SYSTEM + language_line(state))
        reply = rt.answer_model.invoke([system, HumanMessage(
            prompts.answer_user(fact_sheet, last_user_text(state), state.get("violations")))])
        draft = complete_lines(reply) or None
    except Exception as exc:  # noqa: BLE001 - the deterministic report stands in
        log.warning("LLM answer failed: %s", exc)
        attempts = MAX_DRAFTS  # a timeout or a dead server: no second try
    return {"draft": draft, "attempts": attempts}


def language_line(state: AdvisorState) -> str:
    """The prompt's line for a user who writes in another language ('' for English)."""
    line = instruction(state.get("language"))
    return f"\n\n{line}" if line else ""


def explained(state: AdvisorState, config: dict[str, Any]) -> dict[str, Any]:
    """The 'why' facts of `config` from this turn's explain_config output (empty if none)."""
    for out in reversed(state.get("tool_outputs") or []):
        if out["tool"] != "explain_config" or out["turn"] != state.get("turn") \
                or out["args"].get("config") != config:
            continue
        try:
            data = json.loads(out["output"])
            factors = [Factor(feature=f["factor"], label=f["factor"], value_text=f["value"],
                              contribution_points=f["points"]).text for f in data["factors"]]
            return {"why": factors[:facts.COMPACT_WHY],
                    "average_over_past_runs_pct": data["average_over_past_runs_pct"]}
        except (ValueError, KeyError, TypeError):
            return {}
    return {}


# The answer prompt's hints, which a small model copies into its lines.
_TEMPLATE_ECHO = re.compile(
    r"\s*(?:" + "|".join(re.escape(h) for h in prompts.ANSWER_HINTS) + r")\s*[.:]?", re.IGNORECASE)


def complete_lines(reply: BaseMessage) -> str:
    """The reply's text without echoed prompt instructions; when the reply cap cut it mid-line,
    without the cut line."""
    text = text_of(reply).strip()
    if (getattr(reply, "response_metadata", None) or {}).get("finish_reason") == "length":
        text = text.rsplit("\n", 1)[0].rstrip() if "\n" in text else text
    text = _TEMPLATE_ECHO.sub(" ", text).replace(":  ", ": ")
    return re.sub(r"(?im)^\s*notes:\s*$\n?", "", text).strip()  # a "Notes:" left empty
