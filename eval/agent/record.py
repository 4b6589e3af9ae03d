"""What one scripted conversation produced: per turn and per scenario (JSON-ready pydantic models).

The runner fills these in while the conversation runs; `eval.agent.metrics` computes every metric
from them alone, so metrics are testable on hand-made records.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

TOOL_OUTPUT_CHARS = 1500  # tool outputs are kept this long in the results JSON


class ToolCall(BaseModel):
    """One tool call of the turn, as the graph logged it (`tool_outputs`)."""

    tool: str
    args: dict[str, Any]
    output: str


class Launch(BaseModel):
    """One call that reached the real launch_training tool (not the graph's refusals)."""

    turn: int
    args: dict[str, Any]
    output: str


class TurnRecord(BaseModel):
    index: int = Field(description="1-based")
    user: str
    simulated: bool = False
    confirm: bool = False
    reply: str = ""
    seconds: float = 0.0
    tool_calls: list[ToolCall] = Field(default_factory=list)
    recommendation: dict[str, Any] | None = Field(None, description="after the turn")
    new_recommendation: bool = False
    pending_question: str | None = None
    awaiting_launch: bool = False
    plan: dict[str, Any] | None = Field(None, description="the config the advisor proposes after "
                                        "the turn: the launch waiting for a yes, else the "
                                        "recommendation's presented config")
    traits: dict[str, Any] = Field(default_factory=dict, description="known after the turn")
    measured: dict[str, Any] = Field(default_factory=dict, description="the measured traits "
                                     "(analyze_dataset) after the turn")
    budget: str | None = Field(None, description="the budget constraint after the turn")
    error: str | None = None


class ScenarioRecord(BaseModel):
    scenario: str
    backend: str
    turns: list[TurnRecord] = Field(default_factory=list)
    traits: dict[str, Any] = Field(default_factory=dict, description="known at the end")
    constraints: dict[str, Any] = Field(default_factory=dict)
    launches: list[Launch] = Field(default_factory=list)
    store_added: list[str] = Field(default_factory=list)
    store_changed: list[str] = Field(default_factory=list)
    store_removed: list[str] = Field(default_factory=list)
    data_roots: list[str] = Field(default_factory=list)
    verdict: dict[str, Any] | None = Field(None, description="the judge's, when graded")
    judge_error: str | None = None
    usage: dict[str, Any] = Field(default_factory=dict, description="the advisor's LLM calls")
    judge_usage: dict[str, Any] = Field(default_factory=dict, description="the judge's LLM calls")
    seconds: float = 0.0
    error: str | None = Field(None, description="why the conversation stopped early")

    @property
    def recommendation(self) -> dict[str, Any] | None:
        for turn in reversed(self.turns):
            if turn.recommendation is not None:
                return turn.recommendation
        return None


__all__ = ["Launch", "ScenarioRecord", "TOOL_OUTPUT_CHARS", "ToolCall", "TurnRecord"]
