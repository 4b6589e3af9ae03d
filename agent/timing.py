"""Where a turn's time goes: seconds per graph node, LLM calls, prompt / completion / cached tokens.

    graph = build_advisor(...)            # every node is wrapped by `timed`
    advise(graph, "3,000 chest X-rays ...", "alice")
    graph.get_state(thread_config("alice")).values["timing"]
    # {"turn": 1, "seconds": 41.2, "llm_calls": 2, "prompt_tokens": 1893, "completion_tokens": 251,
    #  "cached_tokens": 310, "llm_seconds": 40.1,
    #  "nodes": [{"node": "extract", "seconds": 0.02, "llm_calls": 0, ...}, ...]}

The LLM figures come from LangChain callbacks: `timed` puts a `UsageRecorder` in a context
variable registered as a configure hook, so every chat-model call made while the node runs
reports to it, whatever the model (tokens when the backend reports usage: llama.cpp and
OpenAI-compatible servers do, with the prompt tokens served from llama.cpp's prompt cache as
`cached_tokens`; Ollama reports no cache; scripted models report none). A wrapper model
(`ToolCallingModel`) and the model it wraps count as one call. `merge_timing` is the state
reducer: node entries of the same turn add up, a new turn starts afresh.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.outputs import LLMResult
from langchain_core.tracers.context import register_configure_hook

COUNTERS = ("llm_calls", "prompt_tokens", "completion_tokens", "cached_tokens", "llm_seconds")


class UsageRecorder(BaseCallbackHandler):
    """Counts the chat-model calls (and their usage) made while it is the current recorder."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {k: 0 for k in COUNTERS}
        self._open: dict[UUID, float] = {}
        self._wrappers: set[UUID] = set()

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[Any]], *,
                            run_id: UUID, parent_run_id: UUID | None = None,
                            **kwargs: Any) -> None:
        if parent_run_id in self._open:  # the parent only wraps this call
            self._wrappers.add(parent_run_id)
        self._open[run_id] = time.perf_counter()

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        started = self._open.pop(run_id, None)
        if run_id in self._wrappers or started is None:
            self._wrappers.discard(run_id)
            return
        self.totals["llm_calls"] += 1
        self.totals["llm_seconds"] += time.perf_counter() - started
        usage = _usage(response)
        for key in ("prompt_tokens", "completion_tokens", "cached_tokens"):
            self.totals[key] += usage.get(key) or 0

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        started = self._open.pop(run_id, None)
        if run_id not in self._wrappers and started is not None:
            self.totals["llm_calls"] += 1
            self.totals["llm_seconds"] += time.perf_counter() - started
        self._wrappers.discard(run_id)


def _usage(response: LLMResult) -> dict[str, int]:
    """Prompt / completion / cached tokens of one reply, when the backend reported them."""
    try:
        message = response.generations[0][0].message  # type: ignore[attr-defined]
        meta = getattr(message, "usage_metadata", None) or {}
    except (IndexError, AttributeError):
        meta = {}
    if meta:
        return {"prompt_tokens": meta.get("input_tokens"),
                "completion_tokens": meta.get("output_tokens"),
                "cached_tokens": (meta.get("input_token_details") or {}).get("cache_read")}
    usage = (response.llm_output or {}).get("token_usage") or {}
    return {"prompt_tokens": usage.get("prompt_tokens"),
            "completion_tokens": usage.get("completion_tokens"),
            "cached_tokens": (usage.get("prompt_tokens_details") or {}).get("cached_tokens")}


_CURRENT: ContextVar[UsageRecorder | None] = ContextVar("metallmix_usage_recorder", default=None)
register_configure_hook(_CURRENT, inheritable=True)


def timed(name: str, node: Callable[[Any], dict[str, Any] | None]) -> Callable[[Any], dict[str, Any]]:
    """`node` reporting its wall time and LLM usage in the state's `timing` (see the module
    docstring). The node keeps its name and its update."""

    def run(state: Any) -> dict[str, Any]:
        recorder = UsageRecorder()
        token = _CURRENT.set(recorder)
        started = time.perf_counter()
        try:
            update = dict(node(state) or {})
        finally:
            _CURRENT.reset(token)
        entry: dict[str, Any] = {"node": name, "seconds": round(time.perf_counter() - started, 3)}
        entry.update({k: round(v, 3) if k == "llm_seconds" else int(v)
                      for k, v in recorder.totals.items()})
        turn = update.get("turn") or (state.get("turn") if hasattr(state, "get") else 0) or 0
        update["timing"] = {"turn": turn, "nodes": [entry]}
        return update

    run.__name__ = name
    run.__doc__ = node.__doc__
    return run


def merge_timing(old: dict[str, Any] | None, new: dict[str, Any] | None) -> dict[str, Any] | None:
    """The state reducer of `timing`: one turn's node entries, with their totals."""
    if not new:
        return old
    nodes = list(new.get("nodes") or [])
    if old and old.get("turn") == new.get("turn"):
        nodes = [*(old.get("nodes") or []), *nodes]
    out: dict[str, Any] = {"turn": new.get("turn"),
                           "seconds": round(sum(n["seconds"] for n in nodes), 3)}
    for key in COUNTERS:
        total = sum(n.get(key) or 0 for n in nodes)
        out[key] = round(total, 3) if key == "llm_seconds" else int(total)
    out["nodes"] = nodes
    return out


def summary(timing: dict[str, Any] | None) -> str:
    """One line for a terminal: total, LLM calls, tokens, and the slowest nodes."""
    if not timing:
        return "no timing recorded"
    slow = sorted(timing["nodes"], key=lambda n: -n["seconds"])[:4]
    tokens = (f"{timing['prompt_tokens']:,} prompt tokens ({timing['cached_tokens']:,} cached), "
              f"{timing['completion_tokens']:,} generated" if timing["prompt_tokens"] else
              "no token counts reported")
    return (f"{timing['seconds']:.1f} s · {timing['llm_calls']} LLM call"
            f"{'s' if timing['llm_calls'] != 1 else ''} · {tokens} · "
            + ", ".join(f"{n['node']} {n['seconds']:.1f} s" for n in slow))


__all__ = ["COUNTERS", "UsageRecorder", "merge_timing", "summary", "timed"]
