"""The judge's meaning check and rubric rules (issue 16 item 3): an answer that quotes only the
tools' numbers but says what they contradict fails the deterministic "meaning grounded" check, and
the rubric prompt states the same rules in words."""

from __future__ import annotations

import copy

import pytest

from agent.graph import transcript
from agent.judge import RUBRIC_RULES, judge_transcript
from agent.testing import ScriptedChatModel
from knowledge.search_space import MODELS
from tests.agent.helpers import FULL, Brain, make, run

LENIENT = {"format": {"score": 5, "reason": "clear"}, "accuracy": {"score": 5, "reason": "ok"},
           "completeness": {"score": 5, "reason": "all there"}}


@pytest.fixture
def good(tools, store) -> dict:
    graph, _ = make(Brain(), tools, store)
    _, state = run(graph, FULL)
    return transcript(state)


def _failed(verdict) -> dict[str, str]:  # noqa: ANN001
    return {c.name: c.detail for c in verdict.checks if not c.passed}


def test_a_good_answer_passes_the_meaning_check_and_the_rubric_gets_the_rules(good, store) -> None:
    judge = ScriptedChatModel(script=[{"json": LENIENT}])
    verdict = judge_transcript(good, judge, store=store)
    assert "meaning grounded" in {c.name for c in verdict.checks}
    assert _failed(verdict) == {} and verdict.passed
    system = judge.calls[0][0].content
    assert system.endswith(RUBRIC_RULES)
    for rule in ("only contrast values that differ", "never to a model",
                 "tools' recommended config", "within the budget"):
        assert rule in system


def test_sentences_the_tools_contradict_fail_the_meaning_check(good, store) -> None:
    rec = good["recommendation"]
    best = rec["best"]["config"]
    label = MODELS[best["model"]].label
    traits = rec["meta_features"]
    entropy = traits.get("class_entropy") or traits["n_classes"]
    bad = copy.deepcopy(good)
    # (a) a trait compared with a model, two equal values contrasted; (d) the user's 512 px claimed
    bad["answer"] = (f"I recommend {label} at 512 px.\n\nThe class entropy is {entropy}, which is "
                     f"higher than the {label} model's {entropy}.\n\n" + good["answer"])
    verdict = judge_transcript(bad, ScriptedChatModel(script=[{"json": LENIENT}]), store=store)
    failed = _failed(verdict)
    detail = failed["meaning grounded"]
    assert "compares two equal values" in detail
    assert f"class entropy is the dataset's, not {label}'s" in detail
    # the claimed 512 px is reported once, by the number check when it catches it, else here
    claimed = "512 px (not the recommended config's value)"
    assert (claimed in failed.get("numbers grounded", "")) != (claimed in detail)
    assert verdict.accuracy.llm_score == 5 and verdict.accuracy.score <= 3 and not verdict.passed


def test_the_deterministic_checks_alone_fail_it_too(good) -> None:
    rec = good["recommendation"]
    best = rec["best"]
    # no config named: nothing to contradict
    fine = dict(good, answer=good["answer"] + "\n\nEvery config shown fits within your budget.")
    assert judge_transcript(fine, None).passed
    # (b) a less accurate config of another model called "more accurate", its accuracy next to it
    worse = next((r for r in [*rec["top"], *rec["pareto"]]
                  if r["config"]["model"] != best["config"]["model"]
                  and round(100 * r["predicted_acc"], 1) < round(100 * best["predicted_acc"], 1)),
                 None)
    if worse is None:
        pytest.skip("no less accurate config of another model in this recommendation")
    label = MODELS[worse["config"]["model"]].label
    bad = dict(good, answer=good["answer"] + f"\n\nA more accurate alternative is {label} "
                                              f"({round(100 * worse['predicted_acc'], 1)} %).")
    verdict = judge_transcript(bad, None)
    assert "predicted accuracy" in _failed(verdict)["meaning grounded"]
    assert verdict.accuracy.score == 3 and not verdict.passed
