"""Conversations on the advisor graph: the checkpointer, one thread per user, a turn's reply, and
a finished conversation as data (re-exported by `agent.graph`).

    graph = build_advisor(model, checkpointer=open_checkpointer("threads.sqlite"))
    reply = advise(graph, "3,000 chest X-rays, 3 classes, one hour on a T4", thread_id="alice")
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage

from agent.nodes.runtime import text_of as _text
from knowledge.errors import StoreError


def open_checkpointer(path: str | Path) -> Any:
    """A SQLite checkpointer (conversations resume by thread_id across processes). Its connection
    is `.conn` (close it when done). Raises StoreError (one line) when the file cannot be opened."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    path = Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), check_same_thread=False)
        saver = SqliteSaver(conn)
        saver.setup()
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the conversation store {path}: {exc}") from None
    return saver


def thread_config(thread_id: str) -> dict[str, Any]:
    """The invoke config of one conversation (one thread per user)."""
    return {"configurable": {"thread_id": thread_id}}


def advise(graph: Any, text: str, thread_id: str = "default") -> str:
    """Send one user message on `thread_id` and return the advisor's reply (all AI text of the turn)."""
    before = len(graph.get_state(thread_config(thread_id)).values.get("messages", [])) if (
        graph.checkpointer is not None) else 0
    state = graph.invoke({"messages": [HumanMessage(text)]}, thread_config(thread_id))
    return reply_text(state["messages"][before:])


def reply_text(messages: Sequence[BaseMessage]) -> str:
    """The text the user sees: AI messages without tool calls, joined."""
    return "\n\n".join(_text(m) for m in messages
                       if isinstance(m, AIMessage) and not m.tool_calls and _text(m).strip())


def transcript(state: dict[str, Any]) -> dict[str, Any]:
    """A finished conversation as JSON-ready data (what the judge grades)."""
    messages = []
    for m in state.get("messages") or []:
        item: dict[str, Any] = {"role": m.type, "content": _text(m)}
        if isinstance(m, AIMessage) and m.tool_calls:
            item["tool_calls"] = [{"name": c["name"], "args": c["args"]} for c in m.tool_calls]
        if isinstance(m, ToolMessage):
            item["name"] = m.name
        messages.append(item)
    answers = [m for m in messages if m["role"] == "ai" and not m.get("tool_calls")]
    return {"messages": messages, "traits": state.get("traits") or {},
            "constraints": state.get("constraints") or {},
            "recommendation": state.get("recommendation"),
            "tool_outputs": list(state.get("tool_outputs") or []),
            "answer": answers[-1]["content"] if answers else "",
            "launched_run": state.get("launched_run")}


__all__ = ["advise", "open_checkpointer", "reply_text", "thread_config", "transcript"]
