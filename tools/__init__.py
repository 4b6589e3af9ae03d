"""LangChain tools the agent calls: thin, validated wrappers over knowledge/.

    from tools import ALL_TOOLS, get_tools
    tools = get_tools(store="runs.sqlite", training=False)   # e.g. a read-only demo

Every tool takes a pydantic argument schema and returns compact JSON text; errors (bad arguments,
unreadable data, refused actions) come back as `{"error": "..."}`, never as an exception.
"""

from __future__ import annotations

from pathlib import Path

from langchain_core.tools import BaseTool

from tools import advice, data, training

TOOL_NAMES: tuple[str, ...] = ("analyze_dataset", "rank_configs", "explain_config", "similar_runs",
                               "search_runs", "launch_training")


def get_tools(store: str | Path | None = None, *, training_tool: bool = True,
              names: list[str] | None = None) -> list[BaseTool]:
    """The tools over run store `store` (default: the user's); `training_tool=False` leaves
    `launch_training` out; `names` picks tools by name (ValueError for an unknown one)."""
    tools: list[BaseTool] = [*data.build(), *advice.build(store)]
    if training_tool:
        tools += training.build(store)
    if names is not None:
        unknown = sorted(set(names) - set(TOOL_NAMES))
        if unknown:
            raise ValueError(f"unknown tool(s) {', '.join(unknown)}; known: {', '.join(TOOL_NAMES)}")
        tools = [t for t in tools if t.name in names]
    return tools


ALL_TOOLS: list[BaseTool] = get_tools()

__all__ = ["ALL_TOOLS", "TOOL_NAMES", "get_tools"]
