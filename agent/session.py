"""`Session`: one advisor graph over a chat model, the run store's tools and a SQLite checkpointer.

Shared by the terminal chat (`metallmix chat/ask`) and the web app (`metallmix ui`): each user
conversation is a thread id on the same graph, so several users stay isolated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional


class Session:
    """One advisor graph over a chat model, with conversations checkpointed in SQLite.

    `llm` is an LLM spec (see `agent.llm.get_chat_model`); pass `model` (and optionally `backend`)
    instead to use a chat model object directly. Raises LLMUnavailable / LLMSpecError when no
    model can be had, StoreError when the store or the checkpoint file cannot be opened.
    """

    def __init__(self, llm: Optional[str] = None, store: Optional[Path] = None, *,
                 model: Any = None, backend: Any = None) -> None:
        from agent.configuration import AgentConfig
        from agent.graph import build_advisor, open_checkpointer
        from agent.llm import BackendInfo, get_chat_model
        from knowledge.meta_dataset.shipped import open_store
        from tools import get_tools

        config = AgentConfig.from_env()
        if model is None:
            self.model, self.backend = get_chat_model(llm, config)
        else:
            self.model = model
            self.backend = backend or BackendInfo(kind="scripted", model=type(model).__name__,
                                                  base_url=None,
                                                  description=f"{type(model).__name__} (in process)")
        self.store_path = open_store(store).path  # seeds a new default store with the shipped meta-dataset
        self.saver = open_checkpointer(config.checkpoint_db)
        self.graph = build_advisor(self.model, get_tools(self.store_path), self.saver,
                                   store=self.store_path, max_steps=config.max_steps)

    def turn(self, text: str, thread: str) -> dict[str, Any]:
        """One user message -> the reply, the recommendation (if any) and the tool calls of this turn."""
        from agent.graph import advise

        previous = self.values(thread)
        before = len(previous.get("tool_outputs") or [])
        reply = advise(self.graph, text, thread)
        values = self.values(thread)
        calls = [{"tool": t["tool"], "args": t["args"]} for t in (values.get("tool_outputs") or [])[before:]]
        recommendation = values.get("recommendation")
        return {"reply": reply, "recommendation": recommendation, "tool_calls": calls,
                "new_recommendation": recommendation is not None
                and recommendation != previous.get("recommendation"),
                "thread": thread, "llm": self.backend.description}

    def values(self, thread: str) -> dict[str, Any]:
        """The graph state of one conversation (empty for a new thread)."""
        from agent.graph import thread_config

        return self.graph.get_state(thread_config(thread)).values

    _values = values  # the name `metallmix ask` used first

    def close(self) -> None:
        self.saver.conn.close()


__all__ = ["Session"]
