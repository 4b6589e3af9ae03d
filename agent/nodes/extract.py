"""`extract`: the first node of every turn. Starts the turn, settles a launch waiting for its
"yes", and merges the message's traits, budget and preference into the state."""

from __future__ import annotations

import re
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage
from langgraph.graph import END

from agent.extraction import device_question, extract_turn, unknown_device
from agent.intents import asks_launch, plan_edits, read_intent
from agent.language import detect
from agent.nodes.plan import pick_model as plan_pick_model
from agent.nodes.recommend import NO_LIMIT
from agent.nodes.runtime import Runtime, last_user_text
from agent.state import AdvisorState, known_traits
from agent.traitcheck import merge_traits
from knowledge.errors import ConfigError
from knowledge.metalearner.budget import names_device, parse_budget, parse_duration

_YES = re.compile(r"\s*(yes|y|yep|yeah|sure|ok(ay)?|confirm(ed)?|go ahead|do it|start it|"
                  r"launch it|please do)([,!. ]+(please|go ahead|start it|launch it|do it|"
                  r"start|launch))*\s*[.!]*\s*", re.IGNORECASE)
_NO = re.compile(r"\s*(no|n|nope|cancel|stop|don'?t|do not|not now|wait)\b.{0,40}", re.IGNORECASE)


def with_time_of(budget: str, held: str | None) -> str:
    """`budget` ("an RTX 4090", the answer to "which GPU is that?") with the time of the `held`
    clause it replaces ("2 hours on my Quadro K2200") when the answer states no time itself."""
    if not held:
        return budget
    try:
        if parse_duration(budget) is not None or (seconds := parse_duration(held)) is None:
            return budget
    except ConfigError:
        return budget
    return f"{budget}, {seconds / 60:g} minutes"


def with_earlier(budget: str, earlier: str | None) -> str:
    """`budget` completed by the `earlier` one when it states only half: "I can leave it for 20
    minutes" after "my laptop" keeps the laptop; "I have an A100" after "2 hours" keeps the two
    hours. A message that states both replaces the earlier budget."""
    if not earlier:
        return budget
    try:
        seconds, before = parse_duration(budget), parse_budget(earlier)
    except ConfigError:
        return budget
    device = names_device(budget) or bool(_LAPTOP.search(budget))
    if seconds is not None and not device and (names_device(earlier) or _LAPTOP.search(earlier)):
        return f"{budget}, on {before.device}"
    if seconds is None and device and before.max_seconds is not None:
        return f"{budget}, {before.max_seconds / 60:g} minutes"
    return budget


_LAPTOP = re.compile(r"\b(?:laptop|macbook|notebook|cpu|no gpu|my (?:pc|computer|machine))\b",
                     re.IGNORECASE)


def _names_device(budget: str) -> bool:
    return names_device(budget)


def extract(state: AdvisorState, rt: Runtime) -> dict[str, Any]:
    """The turn's update: `route` "launch" (the launch was confirmed) or END (this node answered
    the turn itself), else None and `agent.routing.after_extract` decides."""
    text = last_user_text(state)
    update: dict[str, Any] = {"turn": (state.get("turn") or 0) + 1, "step": 0, "attempts": 0,
                              "violations": [], "draft": None, "problem": None,
                              "planned": False, "rejected": [], "route": None}
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
    found = extract_turn(rt.extract_model, text, pending=state.get("pending_question"),
                         known=known_traits(state), retries=rt.retries,
                         always_llm=rt.llm_extraction == "always")
    pick_model = plan_pick_model(state)
    intent = read_intent(text, pick_model)  # what the message asks (read once)
    edits = (plan_edits(text, pick_model)  # an edit needs a plan to edit
             if pick_model and intent.kind in ("other", "why_pick") else {})
    merged = merge_traits(dict(state.get("traits") or {}), found.traits(), text, edits=edits)
    traits = merged.traits
    constraints = dict(state.get("constraints") or {})
    held = constraints.pop("unknown_budget", None)  # a clause whose device we asked about
    if found.budget and not (pick_model and intent.kind == "device_time"):
        # a follow-up "how long on a T4?" is a what-if: the user's own budget stays
        budget = found.budget
        if NO_LIMIT.search(text) and not NO_LIMIT.search(budget):  # "CPU only, no time limit"
            budget = f"{budget}, no time limit"
        constraints["budget"] = with_earlier(with_time_of(budget, held), constraints.get("budget"))
    if found.preference and not edits:  # "launch ResNet-18 from scratch ... instead" names it
        constraints["preference"] = found.preference
    if edits:  # "from scratch instead", "use 64 px": the config the ranking must keep to
        constraints["require"] = {**(constraints.get("require") or {}), **edits}
        constraints.pop("preference", None)
    update.update(traits=traits, constraints=constraints, pending_question=None,
                  path_to_read=found.dataset_path,
                  language=detect(text) or state.get("language"),
                  launch_requested=bool(state.get("recommendation")) and asks_launch(text))
    if merged.question:  # the message contradicts itself or what was known: ask, once
        update.update(pending_question=merged.pending, route=END,
                      messages=[*out_messages, AIMessage(merged.question)])
        return update
    unknown = unknown_device(text)
    if unknown is not None and not (found.budget and _names_device(found.budget)):
        # a device the catalogue does not know: ask which it is (never assume a CPU)
        constraints["unknown_budget"] = unknown.clause
        update.update(pending_question="budget", route=END,
                      messages=[*out_messages, AIMessage(device_question(unknown))])
        return update
    if out_messages:
        update["messages"] = out_messages
    return update
