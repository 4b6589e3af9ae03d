"""`Session`: one advisor graph over a chat model, the run store's tools and a SQLite checkpointer.

Shared by the terminal chat (`metallmix chat/ask`) and the web app (`metallmix ui`): each user
conversation is a thread id on the same graph, so several users stay isolated.

    result = session.turn("3,000 chest X-rays, 3 classes", thread="alice")      # all at once
    for event in session.stream_turn("3,000 chest X-rays, 3 classes", "alice"):  # live
        ...  # {"type": "step" | "token" | "rejected" | "final", ...}

`stream_turn` runs the same graph with LangGraph's `stream_mode=["updates", "messages", "tasks"]`
and turns what comes out into events a UI can show while the turn runs:

- `{"type": "start", "node", "label"}`: a node started (what the advisor is doing now);
- `{"type": "step", "node", "label", "detail"?, "tool"?}`: a node or a tool call finished
  ("extracting traits", "ranking configs", "explaining", "retrieving similar runs", ...), or the
  answer draft started ("writing the answer");
- `{"type": "token", "node", "text", "draft"}`: the LLM wrote more of the answer draft (`text` is
  the new piece, `draft` all of it so far); a model that does not stream gives one event per draft;
- `{"type": "traits", "node", "traits"}` and `{"type": "recommendation", "node", "recommendation"}`:
  the traits known so far, the recommendation (`Recommendation.model_dump`), as soon as a node sets
  them (the card can be shown while the LLM still writes about it);
- `{"type": "rejected", "violations", "label", "final"}`: the grounding check refused the draft
  (numbers no tool output contains): forget the streamed text; `final` says the deterministic
  report replaces it, else a new draft follows;
- `{"type": "final", "result"}`: the same dict `turn()` returns; its `reply` is what the user keeps.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

from agent.backends.llamacpp import EmbeddedLlamaServer
from agent.configuration import AgentConfig
from agent.graph import advise, build_advisor, open_checkpointer, reply_text, thread_config
from agent.grounding import NOT_STATED
from agent.llm import BackendInfo, get_chat_model
from agent.state import recommended_this_turn
from agent.toolcalls import message_text
from knowledge.meta_dataset.shipped import open_store
from tools import get_tools

#: what the user sees while a node runs or a tool is called (unknown names show as themselves)
NODE_LABELS = {"extract": "extracting traits", "analyze": "measuring the dataset",
               "ask": "asking for a missing trait", "answer": "writing the answer",
               "agent": "writing the answer", "ground": "checking every number against the tools",
               "propose_launch": "asking to confirm the launch", "launch": "training"}
TOOL_LABELS = {"rank_configs": "ranking configs", "explain_config": "explaining",
               "similar_runs": "retrieving similar runs", "analyze_dataset": "measuring the dataset",
               "search_runs": "searching past runs", "launch_training": "training"}
#: what a node is about to do, while it runs
START_LABELS = {**NODE_LABELS, "recommend": "ranking configs, explaining, retrieving similar runs",
                "agent": "thinking", "tools": "calling tools",
                "ground": "checking the numbers of the answer"}
DRAFT_NODES = ("answer", "agent")  # the nodes whose LLM text is an answer draft
_DETAIL_CHARS = 200

Event = dict[str, Any]


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= _DETAIL_CHARS else text[:_DETAIL_CHARS - 1] + "…"


def update_events(node: str, update: Optional[dict[str, Any]]) -> list[Event]:
    """The events of one node's state update (LangGraph `updates` mode); see the module docstring."""
    update = update or {}
    events = _step_events(node, update)
    if update.get("traits"):
        events.append({"type": "traits", "node": node, "traits": update["traits"]})
    if update.get("recommendation"):
        events.append({"type": "recommendation", "node": node,
                       "recommendation": update["recommendation"]})
    return events


def _step_events(node: str, update: dict[str, Any]) -> list[Event]:
    tool_events = [{"type": "step", "node": node, "tool": t["tool"],
                    "label": TOOL_LABELS.get(t["tool"], t["tool"]), "detail": _short(t["args"])}
                   for t in update.get("tool_outputs") or []]
    if tool_events:
        return tool_events
    if node == "extract":
        traits = {k: t.get("value") if isinstance(t, dict) else t
                  for k, t in (update.get("traits") or {}).items()}
        detail = ", ".join(f"{k}={_short(v)}" for k, v in traits.items()) or "none found"
        return [{"type": "step", "node": node, "label": NODE_LABELS[node], "detail": detail}]
    if node == "ground":
        violations = list(update.get("violations") or [])
        if not violations:
            return [{"type": "step", "node": node, "label": NODE_LABELS[node],
                     "detail": "every number comes from a tool output"}]
        final = bool(update.get("messages"))
        suffix = f" ({NOT_STATED})"  # `agent.grounding.unstated_pick`: a fact of the pick left out
        wrong = [v for v in violations if not v.endswith(suffix)]
        left_out = [v[:-len(suffix)] for v in violations if v.endswith(suffix)]
        why = "; ".join([*([f"not in any tool output: {', '.join(wrong)}"] if wrong else []),
                         *([f"not stated: {', '.join(left_out)}"] if left_out else [])])
        label = (f"draft rejected ({why}); "
                 + ("showing the tools' own report instead" if final else "rewriting it"))
        return [{"type": "rejected", "node": node, "violations": violations, "label": label,
                 "final": final}]
    if node in DRAFT_NODES:
        return []  # the draft's own tokens (and the step announcing it) were streamed already
    if node in ("tools", "recommend"):
        return []  # their tool calls are the steps
    return [{"type": "step", "node": node, "label": NODE_LABELS.get(node, node)}]


class _Drafts:
    """Turns LangGraph `messages` items of the draft nodes into token events: chunks of one LLM
    call add to the draft, a whole message completes (or replaces) it, a new call starts anew."""

    def __init__(self) -> None:
        self.message_id: Optional[str] = None
        self.text = ""
        self.announced = False  # "writing the answer" shown for the current draft

    def events(self, message: Any, node: str) -> list[Event]:
        from langchain_core.messages import AIMessage, AIMessageChunk

        if node not in DRAFT_NODES or not isinstance(message, (AIMessage, AIMessageChunk)):
            return []
        if message.tool_calls or getattr(message, "tool_call_chunks", None):
            return []
        piece = message_text(message)
        if message.id != self.message_id:
            self.message_id, self.text = message.id, ""
        if isinstance(message, AIMessageChunk):
            self.text += piece
        elif piece.startswith(self.text):
            piece, self.text = piece[len(self.text):], piece
        else:
            self.text = piece
        if not piece:
            return []
        out: list[Event] = []
        if not self.announced:
            self.announced = True
            out.append({"type": "step", "node": node, "label": NODE_LABELS[node]})
        out.append({"type": "token", "node": node, "text": piece, "draft": self.text})
        return out

    def node_done(self, node: str) -> list[Event]:
        """A draft node finished: announce it if no token did, and get ready for the next draft."""
        out: list[Event] = []
        if node in DRAFT_NODES:
            if not self.announced and node == "answer":
                out.append({"type": "step", "node": node, "label": NODE_LABELS[node]})
            self.announced, self.message_id, self.text = False, None, ""
        return out


class Session:
    """One advisor graph over a chat model, with conversations checkpointed in SQLite.

    `llm` is an LLM spec (see `agent.llm.get_chat_model`); pass `model` (and optionally `backend`)
    instead to use a chat model object directly. Raises LLMUnavailable / LLMSpecError when no
    model can be had, StoreError when the store or the checkpoint file cannot be opened.
    """

    def __init__(self, llm: Optional[str] = None, store: "str | Path | None" = None, *,
                 model: Any = None, backend: Any = None) -> None:
        config = AgentConfig.from_env()
        if model is None:
            self.model, self.backend = get_chat_model(llm, config)
        else:
            self.model = model
            self.backend = backend or BackendInfo(kind="scripted", model=type(model).__name__,
                                                  base_url=None,
                                                  description=f"{type(model).__name__} (in process)")
        self._lock = threading.Lock()
        self._in_flight = 0  # turns running now (the web app's users share this session)
        # seeds a new default store with the shipped meta-dataset; `.url` reopens it (a file path or
        # a database URL), `.path` is only for display (a URL's password masked)
        self.store_path = open_store(store).url
        self.saver = open_checkpointer(config.checkpoint_db)
        self.graph = build_advisor(self.model, get_tools(self.store_path), self.saver,
                                   store=self.store_path, max_steps=config.max_steps)

    def turn(self, text: str, thread: str) -> dict[str, Any]:
        """One user message -> the reply, the recommendation (if any) and the tool calls of this turn."""
        with self._turn_guard():
            previous = self.values(thread)
            reply = advise(self.graph, text, thread)
            return self._result(previous, reply, thread)

    @contextmanager
    def _turn_guard(self) -> Iterator[None]:
        """Around a turn: when no other turn of this process is running, first let the embedded
        llama.cpp server (automatic threads only) follow the cores free now
        (`EmbeddedLlamaServer.retune`: a program that started since keeps a core busy)."""
        with self._lock:
            if self._in_flight == 0 and self.backend.kind == "llamacpp":
                server = EmbeddedLlamaServer.for_url(self.backend.base_url)
                if server is not None:
                    server.retune()
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def stream_turn(self, text: str, thread: str) -> Iterator[Event]:
        """One user message, as the events of the module docstring while the graph runs; the last
        is `{"type": "final", "result": <what turn() returns>}`."""
        from langchain_core.messages import HumanMessage

        with self._turn_guard():
            previous = self.values(thread)
            before = len(previous.get("messages") or [])
            drafts = _Drafts()
            for mode, chunk in self.graph.stream({"messages": [HumanMessage(text)]},
                                                 thread_config(thread),
                                                 stream_mode=["updates", "messages", "tasks"]):
                if mode == "tasks":
                    if "input" in chunk and not chunk["name"].startswith("__"):  # a task starts
                        yield {"type": "start", "node": chunk["name"],
                               "label": START_LABELS.get(chunk["name"], chunk["name"])}
                    continue
                if mode == "messages":
                    message, meta = chunk
                    yield from drafts.events(message, meta.get("langgraph_node", ""))
                    continue
                for node, update in chunk.items():
                    if node.startswith("__"):  # __interrupt__ and the like: not a step
                        continue
                    yield from drafts.node_done(node)
                    yield from update_events(node, update if isinstance(update, dict) else None)
            reply = reply_text(self.values(thread).get("messages", [])[before:])
            yield {"type": "final", "result": self._result(previous, reply, thread)}

    def _result(self, previous: dict[str, Any], reply: str, thread: str) -> dict[str, Any]:
        values = self.values(thread)
        before = len(previous.get("tool_outputs") or [])
        calls = [{"tool": t["tool"], "args": t["args"]} for t in (values.get("tool_outputs") or [])[before:]]
        recommendation = values.get("recommendation")
        return {"reply": reply, "recommendation": recommendation, "tool_calls": calls,
                "new_recommendation": recommended_this_turn(values),
                "thread": thread, "llm": self.backend.description}

    def values(self, thread: str) -> dict[str, Any]:
        """The graph state of one conversation (empty for a new thread)."""
        return self.graph.get_state(thread_config(thread)).values

    _values = values  # the name `metallmix ask` used first

    def close(self) -> None:
        self.saver.conn.close()


__all__ = ["DRAFT_NODES", "Event", "NODE_LABELS", "START_LABELS", "Session", "TOOL_LABELS",
           "update_events"]
