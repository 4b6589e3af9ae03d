"""Structured output from a chat model, retried with the validation errors fed back.

    found = invoke_structured(model, TurnExtraction, messages, retries=2)
"""

from __future__ import annotations

import logging
from typing import TypeVar

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage
from pydantic import BaseModel, ValidationError

log = logging.getLogger("agent.extraction")

M = TypeVar("M", bound=BaseModel)


def invoke_structured(model: BaseChatModel, schema: type[M], messages: list[BaseMessage],
                      retries: int = 2) -> M:
    """`schema` from the model's structured output, retrying `retries` times with the error fed
    back. Raises the last error (ValueError / ValidationError / the model's own) when all fail."""
    runnable = model.with_structured_output(schema)
    history = list(messages)
    last: Exception | None = None
    for attempt in range(retries + 1):
        try:
            result = runnable.invoke(history)
            if result is None:
                raise ValueError("no output")
            if isinstance(result, dict):
                result = schema.model_validate(result)
            if not isinstance(result, schema):
                raise ValueError(f"expected a {schema.__name__} object")
            return result
        except (ValidationError, ValueError, TypeError, KeyError) as exc:
            last = exc
            log.info("structured output attempt %d failed: %s", attempt + 1, exc)
            history = [*messages, HumanMessage(
                f"Your previous output was invalid: {_error_text(exc)}. Reply again with only a "
                f"JSON object that fits the {schema.__name__} schema.")]
    assert last is not None
    raise last


def _error_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}"
                         for e in exc.errors()[:5])
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


__all__ = ["invoke_structured"]
