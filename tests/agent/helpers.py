"""Helpers for driving the advisor with a scripted LLM (plain functions and classes; the fixtures that
use them are in tests/conftest.py).

`Brain` plays the LLM: it recognises which prompt it got (extraction, question, answer, follow-up)
and replies from per-kind queues, or with a default that behaves like a careful model (copies
the numbers of the FACTS it was given). `prompt_script` is a simpler script replying by prompt, and
`answer_for` the complete answer a careful model writes for some traits."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from agent import prompts
from agent.graph import advise, build_advisor, thread_config
from agent.testing import ScriptedChatModel, recommendation_answer
from knowledge.runs.store import RunStore

FULL = ("I have about 3,000 chest X-ray images in 3 classes, 512 px grayscale; "
        "I can train for one hour on a T4.")


def kind_of(messages: list[BaseMessage]) -> str:
    system = messages[0].content if messages and isinstance(messages[0], SystemMessage) else ""
    for kind, prompt in (("extract", prompts.EXTRACT_SYSTEM), ("ask", prompts.ASK_SYSTEM),
                         ("answer", prompts.ANSWER_SYSTEM), ("followup", prompts.FOLLOWUP_SYSTEM),
                         ("judge", prompts.JUDGE_SYSTEM)):
        if system.startswith(prompt):
            return kind
    raise AssertionError(f"unexpected prompt: {system[:80]!r}")


def facts_of(messages: list[BaseMessage]) -> dict[str, Any]:
    text = messages[-1].content
    return json.loads(text.split("FACTS (JSON):\n", 1)[1].split("\nYour previous answer")[0])


def careful_answer(messages: list[BaseMessage]) -> str:
    """What a good model writes: every number copied from FACTS."""
    f = facts_of(messages)
    r = f["recommended"]
    faster = f["faster_alternative"] or f["best_within_budget"]
    more = f["more_accurate_alternative"]
    return (f"Train **{r['model_name']}** ({'pretrained' if r['pretrained'] else 'from scratch'}, "
            f"{r['scheme']}) at {r['resolution_px']} px with {r['optimizer']}, learning rate "
            f"{r['lr']}, weight decay {r['weight_decay']}, batch size {r['batch_size']}, "
            f"{r['epochs']} epochs, {r['augmentation']} augmentation. Predicted accuracy "
            f"{r['predicted_accuracy_pct']} % (80 % interval {r['interval_80_pct'][0]}–"
            f"{r['interval_80_pct'][1]} %), training time {r['training_time']}.\n\n"
            f"Why: {'; '.join(f['why'][:3])}.\n\nSimilar past runs: "
            f"{'; '.join(f['similar_past_runs'][:2])}.\n\n"
            + (f"Faster alternative: {faster['model_name']} at {faster['predicted_accuracy_pct']} %"
               f" in {faster['training_time']}. " if faster else "")
            + (f"More accurate: {more['model_name']} at {more['predicted_accuracy_pct']} %."
               if more else ""))


class Brain:
    """A scripted LLM: per prompt kind, a queue of replies (str / dict / AIMessage / callable),
    then the default for that kind."""

    def __init__(self, **queues: list[Any]) -> None:
        self.queues = {k: list(v) for k, v in queues.items()}
        self.seen: dict[str, list[list[BaseMessage]]] = {}
        self.defaults: dict[str, Callable[[list[BaseMessage]], Any]] = {
            "extract": lambda m: {"json": {}},
            "ask": lambda m: "Could you tell me that, please?",
            "answer": careful_answer,
            "followup": lambda m: "It is explained above.",
        }

    def __call__(self, messages: list[BaseMessage]) -> Any:
        kind = kind_of(messages)
        self.seen.setdefault(kind, []).append(messages)
        queue = self.queues.get(kind)
        reply = queue.pop(0) if queue else self.defaults[kind]
        return reply(messages) if callable(reply) else reply



class FakeLaunch:
    """launch_training replaced: records its calls, trains nothing."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, dataset: str, config: Any, confirmed: bool = False,
                 time_budget_minutes: float | None = None) -> str:
        cfg = config.model_dump(exclude_none=True) if hasattr(config, "model_dump") else config
        self.calls.append({"dataset": dataset, "config": cfg, "confirmed": confirmed})
        if confirmed is not True:
            return json.dumps({"error": "not launched: no confirmation"})
        return json.dumps({"run_id": "run-fake-1", "status": "ok", "test_acc_pct": 81.25,
                           "card": "fake run"})



def make(brain: Brain, tools: list, store: RunStore, checkpointer: Any = None,  # noqa: ANN201
         llm_extraction: str = "auto"):
    model = ScriptedChatModel(script=brain)
    graph = build_advisor(model, tools, checkpointer=checkpointer, store=store.path, max_steps=4,
                          llm_extraction=llm_extraction)
    return graph, model


def run(graph: Any, *texts: str, thread: str = "t") -> tuple[list[str], dict]:
    """Send the user turns; the replies and the final state (no checkpointer: state carried)."""
    replies, state = [], {}
    for text in texts:
        if graph.checkpointer is not None:
            replies.append(advise(graph, text, thread))
            state = graph.get_state(thread_config(thread)).values
        else:
            n = len(state.get("messages", []))
            state = graph.invoke({**state, "messages": [*state.get("messages", []),
                                                        HumanMessage(text)]})
            replies.append("\n\n".join(m.content for m in state["messages"][n + 1:]
                                       if isinstance(m, AIMessage) and not m.tool_calls))
    return replies, state


def tools_called(state: dict, turn: int | None = None) -> list[str]:
    return [o["tool"] for o in state.get("tool_outputs", []) if turn is None or o["turn"] == turn]


def prompt_script(traits: dict[str, Any] | Callable[[str], dict[str, Any]], drafts: Sequence[str] = (),
                  question: str = "Which imaging modality are the images?",
                  other: str | None = None) -> Callable:
    """A script replying by prompt: the extraction gets `traits` as JSON (or `traits(prompt)`, the
    prompt holding the user's message; the graph asks the LLM only when the regexes may have
    missed something), a question prompt `question`, the answer prompt the `drafts` in turn (the
    last one repeats), any other prompt `other` (None: fail)."""
    queue = list(drafts)

    def reply(messages: list[BaseMessage]) -> Any:
        system = messages[0].content if messages and isinstance(messages[0], SystemMessage) else ""
        if system.startswith(prompts.EXTRACT_SYSTEM):
            return {"json": traits(str(messages[-1].content)) if callable(traits) else traits}
        if system.startswith(prompts.ASK_SYSTEM):
            return question
        if system.startswith(prompts.ANSWER_SYSTEM) and queue:
            return queue.pop(0) if len(queue) > 1 else queue[0]
        if other is not None:
            return other
        raise AssertionError(f"unexpected prompt: {system[:80]!r}")

    return reply


def answer_for(store: Path, traits: dict[str, Any]) -> str:
    """The complete answer a careful model writes for these traits on the store (no budget: the
    graph ranks for at most an hour on the CPU): it states the pick (model, pretrained, scheme,
    resolution, lr, epochs, predicted accuracy and time), every number copied from the
    recommendation the graph will make."""
    from agent.graph import DEFAULT_HEIGHT
    from agent.nodes.recommend import effective_budget
    from knowledge.recommend import get_advisor, meta_from_traits

    traits = {"height": DEFAULT_HEIGHT, **traits}  # the size the graph assumes when none is given
    return recommendation_answer(get_advisor(store).recommend(meta_from_traits(traits),
                                                              budget=effective_budget(None)[0]))
