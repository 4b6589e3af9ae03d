"""The held-back set (eval/heldback) runs end to end with the scripted backend: every scenario
plays all its turns without an error and the report carries the new totals. Its pass / fail
outcomes are NOT asserted: the set measures the advisor, failures are expected findings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eval.agent.loading import load_scenarios
from eval.agent.report import to_markdown
from eval.agent.runner import run_suite

HELDBACK = Path(__file__).resolve().parents[2] / "eval" / "heldback"


@pytest.fixture(scope="module")
def report(eval_home: Path) -> dict[str, Any]:
    """The held-back suite over the small synthetic store (`eval_home`), offline."""
    return run_suite(load_scenarios(directory=HELDBACK), ["scripted"],
                     store=eval_home / "source.sqlite", out=eval_home / "heldback_scripted.json")


def test_every_heldback_scenario_plays_to_the_end(report: dict[str, Any]) -> None:
    results = report["backends"][0]["results"]
    assert len(results) == len(load_scenarios(directory=HELDBACK))
    for result in results:
        record = result["record"]
        assert record["error"] is None, f"{result['scenario']}: {record['error']}"
        assert len(record["turns"]) == len(next(s for s in load_scenarios(directory=HELDBACK)
                                                if s.name == result["scenario"]).turns)


def test_heldback_report_has_the_new_totals(report: dict[str, Any]) -> None:
    overall = report["backends"][0]["overall"]
    assert overall["fields"] > 0 and 0 <= overall["fields_correct"] <= overall["fields"]
    kinds = overall["followups_by_kind"]
    assert set(kinds) == {"why_not", "why_pick", "hyperparameter", "device_time", "command",
                          "out_of_scope"}
    assert all(0 <= v["passed"] <= v["total"] for v in kinds.values())
    assert overall["questions_asked_twice"] >= 0
    text = to_markdown(report)
    assert "follow-ups answered, by kind" in text and "questions asked twice" in text
