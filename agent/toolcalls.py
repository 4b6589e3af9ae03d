"""Tool calls that small models write as text, turned into real `tool_calls`.

A 0.5B-3B model asked to call a tool often does not use its chat template's tool syntax; it
writes the call into its reply instead, as

- `<tool_call>{"name": ..., "arguments": {...}}</tool_call>` that the server did not parse,
- a fenced block: ```json {"name": ..., "arguments": {...}} ```,
- a bare JSON object or a list of them, with keys `name`/`arguments`, `name`/`parameters`,
  `function`/`args`, OpenAI's `{"type": "function", "function": {...}}`, `{"tool_calls": [...]}`,
- or a Python-style call on a line of its own: `rank_configs(traits={"n_classes": 3})`.

`parse_tool_calls(text, tool_names)` finds them (only calls of tools that exist count; the JSON
may use single quotes, Python literals or trailing commas); `normalize_ai_message` moves them
into an AIMessage's `tool_calls` when the model gave no native ones; `ToolCallingModel` wraps any
chat model so that every reply is normalized (its `bind_tools` binds the inner model).
"""

from __future__ import annotations

import ast
import re
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManager, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, ToolCall
from langchain_core.messages.tool import tool_call as make_tool_call
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool

from agent.lenient_json import (  # noqa: F401 - re-exported
    _balanced_end,
    _outside_strings,
    _pythonize,
    loads_lenient,
)

_TAG_RE = re.compile(r"<(tool_call|tool_calls|function_call|functioncall|tool)>\s*(.*?)\s*"
                     r"(?:</\1>|$)", re.DOTALL | re.IGNORECASE)
_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z_]*)[ \t]*\n?(.*?)```", re.DOTALL)
_ARG_KEYS = ("arguments", "parameters", "args", "input", "tool_input", "action_input", "kwargs")
_NAME_KEYS = ("name", "function", "tool", "tool_name", "action", "function_name")
NOSTREAM = "nostream"  # langgraph.constants.TAG_NOSTREAM (agent/ may import LangGraph; this
#                        module does not need to)
_WRAPPER_KEYS = ("tool_calls", "tool_call", "function_calls", "calls", "tools")


# --- call shapes ---------------------------------------------------------------------------------

def _match_name(name: Any, tool_names: Sequence[str]) -> str | None:
    """The tool `name` refers to (exact, then without a `functions.` prefix, then any case)."""
    if not isinstance(name, str):
        return None
    name = name.strip()
    if name in tool_names:
        return name
    short = name.rsplit(".", 1)[-1]
    if short in tool_names:
        return short
    lowered = {t.lower(): t for t in tool_names}
    return lowered.get(short.lower())


def _arguments(value: Any) -> dict[str, Any] | None:
    """Call arguments as a dict (they may come as a JSON string); None if they are not one."""
    if value is None:
        return {}
    if isinstance(value, str):
        if not value.strip():
            return {}
        try:
            value = loads_lenient(value)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None


def _calls_from_value(value: Any, tool_names: Sequence[str]) -> list[tuple[str, dict[str, Any]]] | None:
    """The (name, args) calls a parsed JSON value describes, or None if it is not call-shaped."""
    if isinstance(value, list):
        calls: list[tuple[str, dict[str, Any]]] = []
        for item in value:
            found = _calls_from_value(item, tool_names)
            if found is None:
                return None
            calls += found
        return calls or None
    if not isinstance(value, dict):
        return None
    for key in _WRAPPER_KEYS:
        if key in value and isinstance(value[key], (list, dict)):
            inner = _calls_from_value(value[key], tool_names)
            if inner is not None:
                return inner
    if isinstance(value.get("function"), dict):  # OpenAI: {"type": "function", "function": {...}}
        return _calls_from_value(value["function"], tool_names)
    for name_key in _NAME_KEYS:
        name = _match_name(value.get(name_key), tool_names)
        if name is None:
            continue
        arg_keys = [k for k in _ARG_KEYS if k in value]
        if arg_keys:
            args = _arguments(value[arg_keys[0]])
        else:  # {"name": "tool", "x": 1}: the other keys are the arguments
            args = {k: v for k, v in value.items() if k not in (name_key, "type", "id")}
        return None if args is None else [(name, args)]
    return None


def _python_call(text: str, tool_names: Sequence[str]) -> list[tuple[str, dict[str, Any]]] | None:
    """`tool(a=1, b="x")` (one or more, one per line) with literal keyword arguments."""
    calls = []
    for line in text.strip().splitlines():
        line = line.strip().rstrip(";")
        if not line:
            continue
        try:
            node = ast.parse(_pythonize(line), mode="eval").body
        except SyntaxError:
            return None
        if not isinstance(node, ast.Call) or node.args:
            return None
        func = node.func
        dotted = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        name = _match_name(dotted, tool_names)
        if name is None or any(kw.arg is None for kw in node.keywords):
            return None
        try:
            args = {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords}
        except (ValueError, SyntaxError, TypeError):
            return None
        calls.append((name, args))
    return calls or None


def _calls_from_text(text: str, tool_names: Sequence[str]) -> list[tuple[str, dict[str, Any]]] | None:
    """Calls in a tag or fence body: JSON value(s) (possibly several, one after another) or a
    Python-style call."""
    text = text.strip()
    if not text:
        return None
    try:
        return _calls_from_value(loads_lenient(text), tool_names)
    except ValueError:
        pass
    calls: list[tuple[str, dict[str, Any]]] = []
    pos = 0
    while pos < len(text):  # several objects in one block: {...}\n{...}
        while pos < len(text) and text[pos] in " \t\r\n,;":
            pos += 1
        if pos >= len(text):
            break
        end = _balanced_end(text, pos) if text[pos] in "{[" else None
        if end is None:
            return _python_call(text, tool_names)
        try:
            found = _calls_from_value(loads_lenient(text[pos:end]), tool_names)
        except ValueError:
            found = None
        if found is None:
            return None
        calls += found
        pos = end
    return calls or None


# --- public API ----------------------------------------------------------------------------------

def _find(text: str, tool_names: Sequence[str]) -> list[tuple[int, int, list[tuple[str, dict]]]]:
    """(start, end, calls) for every span of `text` that holds tool calls, in order."""
    spans: list[tuple[int, int, list[tuple[str, dict]]]] = []

    def free(start: int, end: int) -> bool:
        return all(end <= s or start >= e for s, e, _ in spans)

    for m in _TAG_RE.finditer(text):
        calls = _calls_from_text(m.group(2).strip().strip("`").removeprefix("json"), tool_names)
        if calls:
            spans.append((m.start(), m.end(), calls))
    for m in _FENCE_RE.finditer(text):
        if free(m.start(), m.end()):
            calls = _calls_from_text(m.group(2), tool_names)
            if calls:
                spans.append((m.start(), m.end(), calls))
    pos = 0
    while pos < len(text):  # bare JSON objects and lists
        idx = min((i for i in (text.find("{", pos), text.find("[", pos)) if i >= 0), default=-1)
        if idx < 0:
            break
        if not free(idx, idx + 1):
            pos = next(e for s, e, _ in spans if s <= idx < e)
            continue
        end = _balanced_end(text, idx)
        if end is None:
            pos = idx + 1
            continue
        try:
            calls = _calls_from_value(loads_lenient(text[idx:end]), tool_names)
        except ValueError:
            calls = None
        if calls and free(idx, end):
            spans.append((idx, end, calls))
        pos = end if calls or text[idx] == "{" else idx + 1
    for m in re.finditer(r"^[ \t]*([A-Za-z_][\w.]*\(.*\))[ \t]*;?[ \t]*$", text, re.MULTILINE):
        if free(m.start(1), m.end(1)):  # Python-style call alone on a line
            calls = _python_call(m.group(1), tool_names)
            if calls:
                spans.append((m.start(1), m.end(1), calls))
    return sorted(spans, key=lambda s: s[0])


def _new_id() -> str:
    return f"call_{uuid.uuid4().hex[:16]}"


def parse_tool_calls(text: str, tool_names: Iterable[str]) -> list[ToolCall]:
    """The tool calls written in `text` (tags, fences, bare JSON, Python-style), each with a unique
    id; only calls of a tool in `tool_names` count. [] when there are none."""
    names = list(tool_names)
    if not text or not names:
        return []
    return [make_tool_call(name=name, args=args, id=_new_id())
            for _, _, calls in _find(text, names) for name, args in calls]


def strip_tool_calls(text: str, tool_names: Iterable[str]) -> str:
    """`text` without the tool calls written in it (what is left for the user to read)."""
    names = list(tool_names)
    return _remove(text, _find(text, names) if text and names else [])


def _remove(text: str, spans: list[tuple[int, int, Any]]) -> str:
    for start, end, _ in reversed(spans):
        text = text[:start] + text[end:]
    text = re.sub(r"</?tool_call>", "", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def message_text(message: BaseMessage) -> str:
    """The text of a message whose content may be a string or a list of content blocks."""
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(b if isinstance(b, str) else str(b.get("text", "")) for b in content
                   if isinstance(b, str) or b.get("type") == "text")


def normalize_ai_message(message: BaseMessage, tool_names: Iterable[str]) -> BaseMessage:
    """`message` with the tool calls written in its text moved into `tool_calls` (and out of its
    content). Unchanged when it already has native tool calls, is no AIMessage, or has none."""
    if not isinstance(message, AIMessage) or message.tool_calls:
        return message
    names = list(tool_names)
    text = message_text(message)
    spans = _find(text, names) if text and names else []
    if not spans:
        return message
    calls = [make_tool_call(name=name, args=args, id=_new_id())
             for _, _, found in spans for name, args in found]
    return AIMessage(content=_remove(text, spans), tool_calls=calls, id=message.id, name=message.name,
                     additional_kwargs=message.additional_kwargs,
                     response_metadata=message.response_metadata,
                     usage_metadata=message.usage_metadata)


def tool_names_of(tools: Sequence[Any]) -> list[str]:
    """Names of tools given as BaseTools, functions, pydantic models or OpenAI tool dicts."""
    return [convert_to_openai_tool(t)["function"]["name"] for t in tools]


def _child_config(run_manager: Any, stream: bool = False) -> dict[str, Any]:
    """Config of the inner call: traced under this run, but tagged `nostream` (unless `stream`) so
    that LangGraph's `stream_mode="messages"` shows the normalized reply, not the inner model's raw
    text. With no tools bound there is nothing to normalize: its tokens may stream as they come."""
    if run_manager is None:
        return {} if stream else {"tags": [NOSTREAM]}
    child = CallbackManager(handlers=[], parent_run_id=run_manager.run_id)
    child.set_handlers(run_manager.inheritable_handlers)
    child.add_tags(run_manager.inheritable_tags)
    child.add_metadata(run_manager.inheritable_metadata)
    if not stream:
        child.add_tags([NOSTREAM], inherit=False)
    return {"callbacks": child}


class ToolCallingModel(BaseChatModel):
    """A chat model whose replies get `normalize_ai_message`: tool calls a small model wrote as
    text become real `tool_calls`.

        model = ToolCallingModel(inner=ChatOpenAI(...)).bind_tools(tools)

    `bind_tools` binds the tools to the inner model and returns a new wrapper that knows their
    names; `with_structured_output` is the inner model's own.
    """

    inner: Runnable
    """The wrapped chat model (or a chat model with tools bound)."""
    tool_names: tuple[str, ...] = ()
    """Names of the bound tools; calls of other names are left in the text."""

    @property
    def _llm_type(self) -> str:
        return "tool-call-normalizing"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"inner": repr(self.inner)[:200], "tool_names": self.tool_names}

    def _result(self, reply: BaseMessage) -> ChatResult:
        message = normalize_ai_message(reply, self.tool_names)
        if not isinstance(message, AIMessage):
            message = AIMessage(content=message_text(message))
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        config = _child_config(run_manager, stream=not self.tool_names)
        if stop is not None:
            kwargs["stop"] = stop
        return self._result(self.inner.invoke(messages, config=config, **kwargs))

    async def _agenerate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                         run_manager: AsyncCallbackManagerForLLMRun | None = None,
                         **kwargs: Any) -> ChatResult:
        config = _child_config(run_manager, stream=not self.tool_names)
        if stop is not None:
            kwargs["stop"] = stop
        return self._result(await self.inner.ainvoke(messages, config=config, **kwargs))

    def bind_tools(self, tools: Sequence[Any], *, tool_choice: str | None = None,
                   **kwargs: Any) -> Runnable[LanguageModelInput, AIMessage]:
        if not isinstance(self.inner, BaseChatModel):
            raise TypeError("bind_tools needs an unbound chat model inside ToolCallingModel")
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        bound = self.inner.bind_tools(tools, **kwargs)
        return ToolCallingModel(inner=bound, tool_names=tuple(tool_names_of(tools)))

    def with_structured_output(self, schema: Any, **kwargs: Any) -> Runnable:
        if not isinstance(self.inner, BaseChatModel):
            raise TypeError("with_structured_output needs an unbound chat model inside")
        return self.inner.with_structured_output(schema, **kwargs)
