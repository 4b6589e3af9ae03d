"""Tool calls written as text by small models -> real tool_calls."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import BaseModel, Field

from agent.toolcalls import (
    ToolCallingModel,
    loads_lenient,
    normalize_ai_message,
    parse_tool_calls,
    strip_tool_calls,
    tool_names_of,
)

TOOLS = ["analyze_dataset", "rank_configs", "explain_config", "similar_runs"]
RANK = ("rank_configs", {"traits": {"n_classes": 3, "modality": "x-ray"}, "top_k": 3})

# (model output, expected [(name, args)], expected remaining text)
SHAPES: list[tuple[str, list[tuple[str, dict]], str]] = [
    # Qwen's template syntax, not parsed by the server
    ('<tool_call>\n{"name": "rank_configs", "arguments": {"traits": {"n_classes": 3, '
     '"modality": "x-ray"}, "top_k": 3}}\n</tool_call>', [RANK], ""),
    # an unclosed tag (the model stopped right after the JSON)
    ('<tool_call>\n{"name": "rank_configs", "arguments": {"traits": {"n_classes": 3, '
     '"modality": "x-ray"}, "top_k": 3}}', [RANK], ""),
    # fenced json with prose around it
    ('I will rank configs for you.\n```json\n{"name": "rank_configs", "arguments": {"traits": '
     '{"n_classes": 3, "modality": "x-ray"}, "top_k": 3}}\n```\nOne moment.',
     [RANK], "I will rank configs for you.\n\nOne moment."),
    # a fence with no language
    ('```\n{"name": "analyze_dataset", "arguments": {"path": "data/chest.npz"}}\n```',
     [("analyze_dataset", {"path": "data/chest.npz"})], ""),
    # bare JSON
    ('{"name": "analyze_dataset", "arguments": {"path": "chest.npz", "modality": "x-ray"}}',
     [("analyze_dataset", {"path": "chest.npz", "modality": "x-ray"})], ""),
    # bare JSON after prose, on the same line
    ('Let me look: {"name": "analyze_dataset", "arguments": {"path": "a.npz"}}',
     [("analyze_dataset", {"path": "a.npz"})], "Let me look:"),
    # "parameters" instead of "arguments"
    ('{"name": "similar_runs", "parameters": {"traits": {"n_classes": 2}, "k": 5}}',
     [("similar_runs", {"traits": {"n_classes": 2}, "k": 5})], ""),
    # function/args
    ('{"function": "similar_runs", "args": {"traits": {"n_classes": 2}}}',
     [("similar_runs", {"traits": {"n_classes": 2}})], ""),
    # OpenAI's shape with arguments as a JSON string
    ('{"type": "function", "function": {"name": "analyze_dataset", '
     '"arguments": "{\\"path\\": \\"x.npz\\"}"}}', [("analyze_dataset", {"path": "x.npz"})], ""),
    # a list of calls
    ('[{"name": "analyze_dataset", "arguments": {"path": "x.npz"}}, '
     '{"name": "rank_configs", "arguments": {"traits": {"n_classes": 3, "modality": "x-ray"}, '
     '"top_k": 3}}]', [("analyze_dataset", {"path": "x.npz"}), RANK], ""),
    # {"tool_calls": [...]}
    ('{"tool_calls": [{"name": "analyze_dataset", "arguments": {"path": "x.npz"}}]}',
     [("analyze_dataset", {"path": "x.npz"})], ""),
    # two objects one after the other in one fence
    ('```json\n{"name": "analyze_dataset", "arguments": {"path": "x.npz"}}\n'
     '{"name": "similar_runs", "arguments": {"traits": {"n_classes": 2}}}\n```',
     [("analyze_dataset", {"path": "x.npz"}), ("similar_runs", {"traits": {"n_classes": 2}})], ""),
    # single quotes, Python literals, trailing commas
    ("{'name': 'rank_configs', 'arguments': {'traits': {'n_classes': 3, 'modality': 'x-ray',}, "
     "'top_k': 3,},}", [RANK], ""),
    ('{"name": "explain_config", "arguments": {"traits": {"n_classes": 2}, "config": '
     '{"model": "resnet18", "pretrained": true, "lr": null}}}',
     [("explain_config", {"traits": {"n_classes": 2},
                          "config": {"model": "resnet18", "pretrained": True, "lr": None}})], ""),
    # a ReAct-style action
    ('{"action": "analyze_dataset", "action_input": {"path": "x.npz"}}',
     [("analyze_dataset", {"path": "x.npz"})], ""),
    # name with a "functions." prefix, and no argument key: the other keys are the arguments
    ('{"name": "functions.analyze_dataset", "path": "x.npz"}',
     [("analyze_dataset", {"path": "x.npz"})], ""),
    # a call without arguments
    ('{"name": "analyze_dataset"}', [("analyze_dataset", {})], ""),
    # Python-style call, alone on a line and in a python fence
    ('Calling now:\nanalyze_dataset(path="x.npz", modality="ct")',
     [("analyze_dataset", {"path": "x.npz", "modality": "ct"})], "Calling now:"),
    ('```python\nrank_configs(traits={"n_classes": 3, "modality": "x-ray"}, top_k=3)\n```',
     [RANK], ""),
    # strings that contain braces, quotes and apostrophes
    ('{"name": "analyze_dataset", "arguments": {"path": "it\'s {odd} \\"name\\".npz"}}',
     [("analyze_dataset", {"path": 'it\'s {odd} "name".npz'})], ""),
    # a fence inside the tag
    ('<tool_call>\n```json\n{"name": "analyze_dataset", "arguments": {"path": "x.npz"}}\n```\n'
     '</tool_call>', [("analyze_dataset", {"path": "x.npz"})], ""),
]

# outputs that hold no call of an available tool: unchanged
NOT_CALLS = [
    "The best config is resnet18 with lr 0.001.",
    '{"name": "get_weather", "arguments": {"city": "Paris"}}',          # unknown tool
    'The config {"model": "resnet18", "lr": 0.001} ranked first.',      # JSON, not a call
    '```json\n{"predicted_acc_pct": 91.2, "model_name": "ResNet-18"}\n```',
    '{"result": {"name": "rank_configs", "arguments": {}}}',            # a call nested in data
    '{"name": "rank_configs", "arguments": [1, 2]}',                    # arguments not an object
    "Use analyze_dataset with your file path, e.g. analyze_dataset(path=...)",
    "{ unbalanced and it's not JSON",
    "",
]


@pytest.mark.parametrize(("text", "expected", "rest"), SHAPES)
def test_parse_tool_calls_shapes(text: str, expected: list, rest: str) -> None:
    calls = parse_tool_calls(text, TOOLS)
    assert [(c["name"], c["args"]) for c in calls] == expected
    assert all(c["type"] == "tool_call" and c["id"].startswith("call_") for c in calls)
    assert strip_tool_calls(text, TOOLS) == rest


@pytest.mark.parametrize("text", NOT_CALLS)
def test_non_calls_are_left_alone(text: str) -> None:
    assert parse_tool_calls(text, TOOLS) == []
    assert strip_tool_calls(text, TOOLS) == text.strip()


def test_no_tools_means_no_calls() -> None:
    assert parse_tool_calls('{"name": "rank_configs", "arguments": {}}', []) == []


def test_ids_are_unique() -> None:
    text = "\n".join('{"name": "analyze_dataset", "arguments": {"path": "%d.npz"}}' % i
                     for i in range(5))
    ids = [c["id"] for c in parse_tool_calls(text, TOOLS)]
    assert len(ids) == 5 and len(set(ids)) == 5


def test_case_insensitive_name_is_mapped_to_the_tool() -> None:
    [call] = parse_tool_calls('{"name": "Analyze_Dataset", "arguments": {"path": "x"}}', TOOLS)
    assert call["name"] == "analyze_dataset"


def test_loads_lenient() -> None:
    assert loads_lenient("{'a': [1, 2,], 'b': true, 'c': null,}") == {"a": [1, 2], "b": True,
                                                                     "c": None}
    assert loads_lenient('{"s": "true and null stay text"}') == {"s": "true and null stay text"}
    with pytest.raises(ValueError):
        loads_lenient("__import__('os').system('echo no')")
    with pytest.raises(ValueError):
        loads_lenient("{not json}")


def test_normalize_moves_calls_out_of_the_content() -> None:
    msg = AIMessage(content='Checking.\n```json\n{"name": "analyze_dataset", "arguments": '
                            '{"path": "x.npz"}}\n```', id="m1",
                    response_metadata={"finish_reason": "stop"})
    out = normalize_ai_message(msg, TOOLS)
    assert out.content == "Checking."
    assert [(c["name"], c["args"]) for c in out.tool_calls] == [("analyze_dataset",
                                                                 {"path": "x.npz"})]
    assert out.id == "m1" and out.response_metadata == {"finish_reason": "stop"}


def test_normalize_keeps_native_calls_and_plain_text() -> None:
    native = AIMessage(content='{"name": "rank_configs", "arguments": {}}',
                       tool_calls=[{"name": "analyze_dataset", "args": {"path": "y"}, "id": "c1"}])
    assert normalize_ai_message(native, TOOLS) is native
    plain = AIMessage(content="No tool needed.")
    assert normalize_ai_message(plain, TOOLS) is plain
    human = HumanMessage(content='{"name": "rank_configs", "arguments": {}}')
    assert normalize_ai_message(human, TOOLS) is human


def test_normalize_reads_content_blocks() -> None:
    msg = AIMessage(content=[{"type": "text",
                              "text": '{"name": "analyze_dataset", "arguments": {"path": "z"}}'}])
    out = normalize_ai_message(msg, TOOLS)
    assert out.tool_calls[0]["args"] == {"path": "z"} and out.content == ""


# --- the wrapper ---------------------------------------------------------------------------------

class _TextModel(BaseChatModel):
    """Replies with fixed text; records what bind_tools got."""

    reply: str
    bound: list[Any] = []

    @property
    def _llm_type(self) -> str:
        return "text-test"

    def _generate(self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None,
                  **kwargs: Any) -> ChatResult:
        self.bound.append(kwargs.get("tools"))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.reply))])

    def bind_tools(self, tools: Any, **kwargs: Any):  # noqa: ANN201
        return self.bind(tools=tool_names_of(tools), **kwargs)


class AnalyzeArgs(BaseModel):
    """Measure a dataset."""

    path: str = Field(description="the dataset file")


def analyze_dataset(path: str) -> str:
    """Measure a dataset file."""
    return path


def test_wrapper_binds_tools_and_normalizes() -> None:
    inner = _TextModel(reply='```json\n{"name": "analyze_dataset", "arguments": {"path": "a"}}\n```')
    model = ToolCallingModel(inner=inner).bind_tools([analyze_dataset])
    assert isinstance(model, ToolCallingModel) and model.tool_names == ("analyze_dataset",)
    out = model.invoke([HumanMessage(content="analyze a")])
    assert isinstance(out, AIMessage)
    assert [(c["name"], c["args"]) for c in out.tool_calls] == [("analyze_dataset", {"path": "a"})]
    assert inner.bound[-1] == ["analyze_dataset"]  # the inner model got the tools
    out = asyncio.run(model.ainvoke("analyze a"))
    assert out.tool_calls[0]["name"] == "analyze_dataset"


def test_unbound_wrapper_leaves_text_alone() -> None:
    text = '{"name": "analyze_dataset", "arguments": {"path": "a"}}'
    out = ToolCallingModel(inner=_TextModel(reply=text)).invoke("hi")
    assert out.content == text and out.tool_calls == []


def test_wrapper_tool_names_from_pydantic_schema() -> None:
    model = ToolCallingModel(inner=_TextModel(reply="ok")).bind_tools([AnalyzeArgs])
    assert model.tool_names == ("AnalyzeArgs",)
