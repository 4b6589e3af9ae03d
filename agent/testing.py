"""`ScriptedChatModel`: a chat model that replies from a script, for tests and `--llm scripted:FILE`.

    model = ScriptedChatModel(script=["Hello!", AIMessage("", tool_calls=[...]), {"json": {...}}])
    model = ScriptedChatModel(script=lambda messages: "an answer")     # reply computed per call
    model = ScriptedChatModel.from_file("script.yaml")                  # a list of replies

A script item is an AIMessage, a string (the reply text), `{"content": ..., "tool_calls": [...]}`
(a reply with tool calls: each `{"name": ..., "args": {...}}`) or `{"json": value}` (the value as
JSON text: what `with_structured_output` parses). A callable script gets the messages of each
call and returns any of those. `bind_tools` returns the model itself (the script decides the
calls); `with_structured_output(schema)` parses the reply (JSON text, fenced or not, or the first
tool call's arguments) into the schema and raises the schema's ValidationError when it does not
fit. Every prompt received is kept in `calls` (a list of message lists) for assertions.

What a careful model answers to the recommendation prompt (the six lines `prompts.ANSWER_SYSTEM`
asks for, every number copied from the FACTS), for scripts:

    ScriptedChatModel(script=[..., answer_from_facts])          # written from the prompt's FACTS
    recommendation_answer(rec)                                  # the same text, from the Recommendation
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from agent import prompts
from knowledge.errors import ConfigError

ScriptItem = AIMessage | str | dict

_FENCE = re.compile(r"```[A-Za-z]*\s*\n?(.*?)```", re.DOTALL)


def facts_answer(facts: dict[str, Any]) -> str:
    """The recommendation answer a careful model writes from the FACTS JSON of the answer prompt
    (`prompts.recommendation_facts(..., compact=True)`): the six lines, every number copied."""
    r = facts["recommended"]
    lo, hi = r["interval_80_pct"]
    lines = [f"Recommended: {r['model_name']}, {'pretrained' if r['pretrained'] else 'from scratch'}"
             f", {r['scheme']}, {r['resolution_px']} px, {r['optimizer']}, learning rate {r['lr']}, "
             f"weight decay {r['weight_decay']}, batch size {r['batch_size']}, {r['epochs']} epochs, "
             f"{r['augmentation']} augmentation.",
             f"Predicted accuracy: {r['predicted_accuracy_pct']} % (80 % interval {lo}-{hi} %), "
             f"training time {r['training_time']}."]
    if facts.get("why"):
        lines.append(f"Why: {'; '.join(facts['why'][:3])}.")
    if facts.get("similar_past_runs"):
        lines.append(f"Similar past runs: {'; '.join(facts['similar_past_runs'][:2])}.")
    alternatives = [f"{kind} - {a['model_name']}, {a['predicted_accuracy_pct']} %, "
                    f"{a['training_time']}" for kind, a in (
                        ("faster", facts.get("faster_alternative")),
                        ("more accurate", facts.get("more_accurate_alternative")),
                        ("runner-up", facts.get("runner_up_alternative"))) if a]
    if alternatives:
        lines.append(f"Alternatives: {'; '.join(alternatives)}.")
    return "\n".join(lines)


def answer_from_facts(messages: Sequence[BaseMessage]) -> str:
    """A script item for the answer prompt: `facts_answer` of the FACTS the prompt shows."""
    text = str(messages[-1].content)
    facts = text.split("FACTS (JSON):\n", 1)[1].split("\nYour previous answer", 1)[0]
    return facts_answer(json.loads(facts))


def recommendation_answer(rec: Any, pick: str = "best") -> str:
    """`facts_answer` for a `knowledge.recommend.Recommendation` (what the advisor's answer
    prompt shows for it; `pick="faster"` when the user asked for speed)."""
    return facts_answer(prompts.recommendation_facts(rec, pick, compact=True))


class ScriptExhausted(RuntimeError):
    """The script has no reply left for a call."""


def to_message(item: ScriptItem) -> AIMessage:
    """A script item as an AIMessage (tool calls get ids when they have none)."""
    if isinstance(item, AIMessage):
        return item
    if isinstance(item, str):
        return AIMessage(content=item)
    if isinstance(item, dict):
        if "json" in item:
            return AIMessage(content=json.dumps(item["json"]))
        calls = [{"name": c["name"], "args": c.get("args", c.get("arguments", {})),
                  "id": c.get("id") or f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"}
                 for c in item.get("tool_calls", [])]
        return AIMessage(content=item.get("content", ""), tool_calls=calls)
    raise TypeError(f"a script item must be an AIMessage, a string or a dict, got {type(item).__name__}")


def parse_structured(message: AIMessage, schema: type[BaseModel] | dict) -> Any:
    """The reply as `schema`: the first tool call's arguments, else the (fenced) JSON text."""
    if message.tool_calls:
        data: Any = message.tool_calls[0]["args"]
    else:
        text = message.content if isinstance(message.content, str) else str(message.content)
        fenced = _FENCE.search(text)
        text = fenced.group(1) if fenced else text
        start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
        data = json.loads(text[start:] if start >= 0 else text)  # ValueError when it is no JSON
    if isinstance(schema, type) and issubclass(schema, BaseModel):
        return schema.model_validate(data)
    return data


class ScriptedChatModel(BaseChatModel):
    """A chat model replying from a script (see the module docstring)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    script: Any = Field(default_factory=list, description="list of replies or a callable")
    calls: list[list[BaseMessage]] = Field(default_factory=list,
                                           description="the messages of every call, in order")
    bound_tools: list[str] = Field(default_factory=list, description="names passed to bind_tools")
    _position: int = PrivateAttr(0)

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedChatModel:
        """A model replying with the items of a JSON or YAML file holding a list (or
        `{"replies": [...]}`). Raises ConfigError (one line naming the file) when it cannot."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the LLM script {path}: {exc.strerror or exc}") from None
        try:
            if path.suffix.lower() in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except Exception as exc:  # noqa: BLE001 - any parse error is the file's fault
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"LLM script {path} is not valid JSON/YAML: {first}") from None
        if isinstance(data, dict):
            data = data.get("replies")
        if not isinstance(data, list):
            raise ConfigError(f"LLM script {path} must hold a list of replies "
                              "(or {\"replies\": [...]})")
        try:
            items = [to_message(item) for item in data]
        except (TypeError, KeyError) as exc:
            raise ConfigError(f"LLM script {path}: bad reply: {exc}") from None
        return cls(script=items)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def remaining(self) -> int | None:
        """Replies left in a list script (None for a callable one)."""
        return None if callable(self.script) else len(self.script) - self._position

    def next_reply(self, messages: list[BaseMessage]) -> AIMessage:
        """Record the call and return the scripted reply."""
        self.calls.append(list(messages))
        if callable(self.script):
            return to_message(self.script(list(messages)))
        if self._position >= len(self.script):
            raise ScriptExhausted(f"the script has no reply left for call {len(self.calls)}")
        item = self.script[self._position]
        self._position += 1
        return to_message(item)

    def _generate(self, messages: list[BaseMessage], stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> ChatResult:
        reply = self.next_reply(messages)
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedChatModel:
        """The model itself (the script decides which tools it calls); the names are recorded."""
        from langchain_core.utils.function_calling import convert_to_openai_tool

        self.bound_tools = [convert_to_openai_tool(t)["function"]["name"] for t in tools]
        return self

    def with_structured_output(self, schema: Any, *, include_raw: bool = False,
                               **kwargs: Any) -> Runnable:
        """A runnable replying with the next scripted reply parsed into `schema`."""

        def run(value: Any) -> Any:
            messages = self._convert_input(value).to_messages()
            reply = self.invoke(messages)
            if not include_raw:
                return parse_structured(reply, schema)
            try:
                return {"raw": reply, "parsed": parse_structured(reply, schema), "parsing_error": None}
            except Exception as exc:  # noqa: BLE001 - reported like LangChain's include_raw
                return {"raw": reply, "parsed": None, "parsing_error": exc}

        return RunnableLambda(run, name="scripted_structured_output")


__all__ = ["ScriptExhausted", "ScriptedChatModel", "answer_from_facts", "facts_answer",
           "parse_structured", "recommendation_answer", "to_message"]
