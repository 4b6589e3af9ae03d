"""LLM calls, tokens and tokens per second of a conversation, from LangChain callbacks.

    meter = UsageMeter()
    graph.invoke(inputs, {"configurable": {...}, "callbacks": [meter]})
    meter.totals()   # {"llm_calls": 7, "input_tokens": ..., "output_tokens": ..., "tokens_per_s": ...}

Every chat-model call inside the graph reports to the handler (the config's callbacks reach the
nodes' `model.invoke`). A wrapper model (`ToolCallingModel`) and the model it wraps both report;
only the innermost calls (those no other call was made from) are counted. Tokens come from the
reply's `usage_metadata` (OpenAI-compatible servers such as llama.cpp's, and Ollama, report it) or
the result's `token_usage`; a backend that reports none (the scripted model) gets no token figures,
never invented ones. Tokens per second = output tokens / wall seconds of the calls that reported
tokens (prompt processing included: what a user waits for).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler


@dataclass
class LLMCall:
    run_id: UUID
    parent: UUID | None
    seconds: float
    input_tokens: int | None
    output_tokens: int | None
    failed: bool = False


def _usage(response: Any) -> tuple[int | None, int | None]:
    for generations in getattr(response, "generations", None) or []:
        for generation in generations:
            meta = getattr(getattr(generation, "message", None), "usage_metadata", None)
            if meta:
                return meta.get("input_tokens"), meta.get("output_tokens")
    usage = (getattr(response, "llm_output", None) or {}).get("token_usage") or {}
    if usage:
        return usage.get("prompt_tokens"), usage.get("completion_tokens")
    return None, None


class UsageMeter(BaseCallbackHandler):
    """Collects every chat-model call (see the module docstring)."""

    run_inline = True

    def __init__(self) -> None:
        self.calls: list[LLMCall] = []
        self._started: dict[UUID, tuple[float, UUID | None]] = {}
        self._lock = threading.Lock()

    def on_chat_model_start(self, serialized: dict[str, Any], messages: list[list[Any]], *,
                            run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        with self._lock:
            self._started[run_id] = (time.perf_counter(), parent_run_id)

    def _end(self, run_id: UUID, response: Any, failed: bool) -> None:
        with self._lock:
            started, parent = self._started.pop(run_id, (None, None))
            if started is None:
                return
            tokens_in, tokens_out = _usage(response) if response is not None else (None, None)
            self.calls.append(LLMCall(run_id, parent, time.perf_counter() - started, tokens_in,
                                      tokens_out, failed))

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, response, failed=False)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._end(run_id, None, failed=True)

    def innermost(self) -> list[LLMCall]:
        """The calls no other recorded call was made from (a wrapper's inner call, not both)."""
        parents = {c.parent for c in self.calls}
        return [c for c in self.calls if c.run_id not in parents]

    def totals(self) -> dict[str, Any]:
        calls = self.innermost()
        out: dict[str, Any] = {"llm_calls": len(calls), "llm_errors": sum(c.failed for c in calls),
                               "llm_seconds": round(sum(c.seconds for c in calls), 3)}
        counted = [c for c in calls if c.output_tokens is not None]
        if counted:
            out.update(input_tokens=sum(c.input_tokens or 0 for c in counted),
                       output_tokens=sum(c.output_tokens or 0 for c in counted),
                       token_seconds=round(sum(c.seconds for c in counted), 3))
            out["tokens_per_s"] = _rate(out["output_tokens"], out["token_seconds"])
        return out


def _rate(tokens: int, seconds: float) -> float | None:
    return round(tokens / seconds, 2) if seconds > 0 else None


def metered(model: Any, meter: UsageMeter) -> Any:
    """A copy of chat model `model` that reports its calls to `meter` (for code that takes a
    model but no run config, e.g. the judge). A `ToolCallingModel` gets the meter on the model it
    wraps, which is what its structured output calls."""
    from langchain_core.language_models import BaseChatModel

    from agent.toolcalls import ToolCallingModel

    if isinstance(model, ToolCallingModel) and isinstance(model.inner, BaseChatModel):
        return model.model_copy(update={"inner": metered(model.inner, meter)})
    if isinstance(model, BaseChatModel):
        return model.model_copy(update={"callbacks": [meter]})
    return model


def combine(totals: list[dict[str, Any]]) -> dict[str, Any]:
    """The totals of several meters (tokens only where some reported them)."""
    out: dict[str, Any] = {"llm_calls": sum(t.get("llm_calls", 0) for t in totals),
                           "llm_errors": sum(t.get("llm_errors", 0) for t in totals),
                           "llm_seconds": round(sum(t.get("llm_seconds", 0.0) for t in totals), 3)}
    counted = [t for t in totals if t.get("output_tokens") is not None]
    if counted:
        for key in ("input_tokens", "output_tokens", "token_seconds"):
            out[key] = sum(t[key] for t in counted)
        out["tokens_per_s"] = _rate(out["output_tokens"], out["token_seconds"])
    return out


__all__ = ["LLMCall", "UsageMeter", "combine", "metered"]
