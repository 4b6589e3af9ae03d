"""`ground`: the grounding check of a draft. Every number must be a tool output's number of the
same kind about the same config, every name must be in the tool outputs
(`agent.grounding.check_answer`), and a recommendation must state the pick itself
(`agent.grounding.unstated_pick`). A failing draft gets one retry listing the violations, then the
deterministic fallback."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage
from langgraph.graph import END

from agent import facts, localize
from agent.grounding import check_answer, launch_violations, launched_ok, unstated_pick
from agent.nodes.answer import explained
from agent.nodes.runtime import (
    MAX_DRAFTS,
    Runtime,
    chosen_of,
    log,
    pick_config,
    preference,
    rec_of,
    sources,
    speed_first,
)
from agent.state import AdvisorState
from agent.translate import translated
from knowledge.recommend import config_label

# Words that show an answer has the card's reasons / alternatives / similar runs (the judge's
# completeness, `agent.judge`'s field words): a section missing from the answer is appended.
_ALTERNATIVE_WORDS = ("faster", "alternative", "more accurate")
_SIMILAR_WORDS = ("similar", "past run", "previous run")
_WHY_WORDS = ("why", "because", "factor", "shap", "points")
WHY_SHOWN = 4
SIMILAR_SHOWN = 3


def ground(state: AdvisorState, rt: Runtime | None = None) -> dict[str, Any]:
    """The grounded answer (`route` END), a retry (`route` "answer" / "agent"), or the fallback."""
    draft = state.get("draft")
    pick: dict[str, Any] | None = None
    pick_sources: list[str] = []
    unstated: list[Any] = []
    if draft and state.get("mode") == "recommend" and state.get("recommendation"):
        pick = pick_config(state)
        pick_sources = facts.pick_sources(rec_of(state), preference(state))
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
        if localize.supported(state.get("language")):  # a recommendation is the localized card
            text = with_notes(completed(draft if state.get("mode") == "recommend"
                                        else in_language(draft, state, rt), state), state)
        else:
            text = in_language(with_notes(completed(draft, state), state), state, rt)
        return {"messages": [AIMessage(text)],
                "route": END, "violations": [], "draft": None, **budget_question(state)}
    log.info("answer not grounded (%s); attempt %d", ", ".join(violations),
             state.get("attempts") or 0)
    rejected = [*(state.get("rejected") or []), {"draft": draft, "violations": violations}]
    if (state.get("attempts") or 0) < MAX_DRAFTS:
        return {"violations": violations, "rejected": rejected,
                "route": "answer" if state.get("mode") == "recommend" else "agent"}
    lang = state.get("language")
    if localize.supported(lang) and state.get("mode") == "recommend" and state.get("recommendation"):
        facts_ = facts.recommendation_facts(rec_of(state), preference(state), compact=True)
        text = with_notes(localize.card(facts_, lang, faster_within=rec_of(state).faster_within_points),
                          state)
    else:
        text = in_language(with_notes(fallback(state), state), state, rt)
    return {"messages": [AIMessage(text)],
            "route": END,
            "violations": violations, "draft": None, "rejected": rejected,
            **budget_question(state)}


def in_language(text: str, state: AdvisorState, rt: Runtime | None) -> str:
    """`text` translated into the user's language when it is not in it (`agent.translate`)."""
    if rt is None or rt.translate_model is None:
        return text
    return translated(rt.translate_model, text, state.get("language")) or text


def fallback(state: AdvisorState) -> str:
    """The deterministic answer: the recommendation's card, or what the tools returned."""
    if state.get("mode") == "recommend" or not state.get("recommendation"):
        if not state.get("recommendation"):
            return "I could not produce a verified answer; please rephrase the question."
        rec = rec_of(state)
        head = ""
        fast = facts.speed_pick(rec)
        if speed_first(state) and fast is not None:
            which = ("the faster alternative" if fast is rec.faster else
                     "the faster config (ranked lower, forecast more accurate)")
            head = f"You asked for speed: {which} is **{config_label(fast)}** (see Alternatives below).\n\n"
        return head + rec.to_markdown()
    turn_outputs = [o for o in state.get("tool_outputs") or [] if o["turn"] == state["turn"]]
    lines = ["I could not verify my own wording against the tool outputs, so here is what the "
             "tools returned:"]
    lines += [f"- `{o['tool']}`: {o['output'][:1500]}" for o in turn_outputs] or [
        "- (no tool was called)"]
    return "\n".join(lines)


def completed(text: str, state: AdvisorState) -> str:
    """A grounded recommendation answer with the card's own alternatives and similar runs
    appended when the model left them out (small models often stop after the config)."""
    if state.get("mode") != "recommend" or not state.get("recommendation"):
        return text
    rec = rec_of(state)
    lang = state.get("language")
    if localize.supported(lang):  # the sections in the user's language (`agent.localize`)
        extra = localize.sections(facts.recommendation_facts(rec, preference(state), compact=True),
                                  lang, text, faster_within=rec.faster_within_points)
        return f"{text}\n\n{extra}" if extra else text
    if lang not in (None, "en"):
        return text
    lowered = text.lower()
    parts = [text]
    shown = facts.chosen(rec, preference(state))
    if not any(w in lowered for w in _WHY_WORDS) and (why := _why_lines(state, rec, shown)):
        parts.append("\n".join(["### Why (SHAP contributions to its predicted accuracy)", *why]))
    if not any(w in lowered for w in _ALTERNATIVE_WORDS):
        parts.append("\n".join(["### Alternatives", *rec.alternative_lines(pareto=False, presented=shown)]))
    if not any(w in lowered for w in _SIMILAR_WORDS) and rec.similar_runs:
        parts.append("\n".join(["### Similar past runs", *rec.similar_run_lines(SIMILAR_SHOWN)]))
    return "\n\n".join(parts)


def _why_lines(state: AdvisorState, rec: Any, shown: Any) -> list[str]:
    """The presented config's SHAP factors as bullets: the recommendation's own for the best, this
    turn's explain_config output for another (none when it was not explained)."""
    if shown is rec.best:
        texts = [f.text for f in rec.explanation.factors]
    else:
        texts = explained(state, shown.config.model_dump()).get("why", [])
    return [f"- {t}" for t in texts[:WHY_SHOWN]]


BUDGET_QUESTION = ("What will you train on, and for how long? Name the GPU (or say CPU only, or "
                   "my laptop) and the time you can give it; I assumed this machine's CPU for at "
                   "most an hour, and I'll re-rank for yours.")
TIME_QUESTION = ("How long can it train? I assumed at most an hour on the CPU; tell me the time "
                 "you can give it and I'll re-rank.")


def needs_budget(state: AdvisorState) -> bool:
    """A recommendation made without a hardware and time budget (none, or a CPU without a time:
    ranked for at most an hour), and the question not asked yet in this conversation (it is
    asked once)."""
    return (state.get("mode") == "recommend" and bool(state.get("recommendation"))
            and (not (state.get("constraints") or {}).get("budget") or bool(state.get("time_assumed")))
            and not state.get("budget_asked"))


def _question(state: AdvisorState) -> str:
    """The budget question, or the time question when the hardware is known."""
    key = "time_question" if (state.get("constraints") or {}).get("budget") else "budget_question"
    if localize.supported(state.get("language")):
        return localize.phrase(state["language"], key)
    return TIME_QUESTION if key == "time_question" else BUDGET_QUESTION


def budget_question(state: AdvisorState) -> dict[str, Any]:
    """The state update that marks the budget question asked (its text: `with_notes`)."""
    return {"pending_question": "budget", "budget_asked": True} if needs_budget(state) else {}


def with_notes(text: str, state: AdvisorState) -> str:
    """`text` with this turn's notes: a tool problem, an assumed image size."""
    notes = []
    lang = state.get("language")
    local = localize.supported(lang)
    if state.get("problem"):
        notes.append(state["problem"])
    height = (state.get("traits") or {}).get("height")
    if state.get("mode") == "recommend" and height and height["source"] == "assumed":
        notes.append(localize.phrase(lang, "assumed_size", px=height["value"]) if local else
                     f"You did not give the image size, so I assumed {height['value']} px; "
                     "tell me the real size to refine this.")
    text += "\n\n" + "\n".join(f"_{'' if local else 'Note: '}{n}_" for n in notes) if notes else ""
    return text + (f"\n\n**{_question(state)}**" if needs_budget(state) else "")
