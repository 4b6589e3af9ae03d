"""What every tool shares: compact JSON results, errors as results, tool construction.

A tool never raises into the agent: a user error from knowledge/ (one line), bad arguments (pydantic
validation) and even an unexpected failure come back as `{"error": "..."}` text the LLM can act
on (fix the argument, ask the user, or say what went wrong).
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Callable
from typing import Any

from langchain_core.tools import StructuredTool
from pydantic import BaseModel, ValidationError

from knowledge.errors import MetaLLMiXError

log = logging.getLogger(__name__)


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf -> None, tuples -> lists, pydantic models -> dicts."""
    if isinstance(value, BaseModel):
        return _clean(value.model_dump(mode="json"))
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def to_json(payload: Any) -> str:
    """Compact JSON text (no spaces after separators, unicode kept)."""
    return json.dumps(_clean(payload), separators=(",", ":"), ensure_ascii=False)


def error(message: str) -> str:
    """An error result: `{"error": message}`."""
    return to_json({"error": message})


def validation_error_text(exc: ValidationError) -> str:
    """Bad tool arguments as one error result naming each field and the problem."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"]) or "arguments"
        parts.append(f"{loc}: {err['msg'].removeprefix('Value error, ')}")
    more = f" (and {len(exc.errors()) - 5} more)" if len(exc.errors()) > 5 else ""
    return error("invalid arguments: " + "; ".join(parts) + more + "; fix them and call again")


def safe(func: Callable[..., Any]) -> Callable[..., str]:
    """Run a tool body; its result as JSON, and any exception as an error result."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> str:
        try:
            result = func(*args, **kwargs)
        except MetaLLMiXError as exc:
            return error(str(exc))
        except ValidationError as exc:
            return validation_error_text(exc)
        except Exception as exc:  # noqa: BLE001 - never let a failure escape into the agent loop
            log.exception("tool %s failed", func.__name__)
            first = str(exc).splitlines()[0] if str(exc) else ""
            return error(f"internal error in {func.__name__}: {type(exc).__name__}: {first}")
        return result if isinstance(result, str) else to_json(result)

    return wrapper


class JsonTool(StructuredTool):
    """A StructuredTool that hands every validated argument to its function, `config` included.

    `StructuredTool._run` takes a keyword `config` (the RunnableConfig) itself, so a tool argument
    named `config` (a training config, here) would be replaced by it; this `_run` takes no
    RunnableConfig, so LangChain passes the arguments through unchanged.
    """

    def _run(self, *args: Any, run_manager: Any = None, **kwargs: Any) -> Any:
        if self.func is None:
            raise NotImplementedError(f"tool {self.name} has no function")
        return self.func(*args, **kwargs)

    async def _arun(self, *args: Any, run_manager: Any = None, **kwargs: Any) -> Any:
        from langchain_core.runnables.config import run_in_executor

        return await run_in_executor(None, self._run, *args, **kwargs)


def make_tool(func: Callable[..., Any], name: str, description: str,
              args_schema: type[BaseModel]) -> StructuredTool:
    """A tool whose errors (bad arguments included) come back as error results."""
    return JsonTool(
        name=name,
        description=description,
        func=safe(func),
        args_schema=args_schema,
        handle_tool_error=True,
        handle_validation_error=validation_error_text,
    )
