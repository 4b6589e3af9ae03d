"""The judge graph: a good and a bad transcript, and a judge LLM that fails."""

from __future__ import annotations

import copy
import json

import pytest

from agent.graph import transcript
from agent.judge import judge_transcript
from agent.testing import ScriptedChatModel
from knowledge.search_space import MODELS
from tests.agent.helpers import FULL, Brain, make, run

GOOD_RUBRIC = {"format": {"score": 5, "reason": "clear"}, "accuracy": {"score": 5, "reason": "ok"},
               "completeness": {"score": 4, "reason": "nearly all"}}


@pytest.fixture
def good(tools, store) -> dict:  # noqa: F811 - fixtures imported above
    graph, _ = make(Brain(), tools, store)
    _, state = run(graph, FULL)
    return transcript(state)


def test_good_transcript_passes(good, store) -> None:  # noqa: F811
    judge = ScriptedChatModel(script=["not json", {"json": GOOD_RUBRIC}])  # one retry
    verdict = judge_transcript(json.dumps(good), judge, store=store)
    assert all(c.passed for c in verdict.checks), verdict.checks
    assert {c.name for c in verdict.checks} >= {"recommendation schema", "config in search space",
                                                 "numbers grounded", "cited runs exist",
                                                 "all fields present"}
    assert verdict.scores() == {"format": 5, "accuracy": 5, "completeness": 4}
    assert verdict.llm_used and verdict.passed and len(judge.calls) == 2
    assert "THE ANSWER (data)" in judge.calls[0][-1].content


def test_bad_transcript_fails(good, store) -> None:  # noqa: F811
    bad = copy.deepcopy(good)
    bad["answer"] = "Use ResNet-18, it gets 99.7 % accuracy."
    bad["recommendation"]["best"]["config"]["lr"] = 5.0  # outside the search space
    bad["recommendation"]["similar_runs"][0]["run_id"] = "no-such-run"
    judge = ScriptedChatModel(script=[{"json": GOOD_RUBRIC}])  # a lenient LLM is capped
    verdict = judge_transcript(bad, judge, store=store)
    failed = {c.name: c.detail for c in verdict.checks if not c.passed}
    assert "99.7" in failed["numbers grounded"] and "no-such-run" in failed["cited runs exist"]
    assert "lr" in failed["config in search space"] and "epochs" in failed["all fields present"]
    assert verdict.accuracy.score == 1 and verdict.completeness.score == 3
    assert verdict.accuracy.llm_score == 5 and not verdict.passed


def test_llm_failure_uses_the_deterministic_checks(good) -> None:
    verdict = judge_transcript(good, ScriptedChatModel(script=[]))
    assert not verdict.llm_used and "ScriptExhausted" in verdict.llm_error
    assert verdict.scores() == {"format": 5, "accuracy": 5, "completeness": 5}
    assert "no LLM grade" in verdict.format.reason
    broken = dict(good, recommendation={"best": {}})
    verdict = judge_transcript(broken, None)
    assert verdict.format.score == 3 and not verdict.passed


def test_invented_names_and_misplaced_numbers_are_caught(good, store) -> None:  # noqa: F811
    rec = good["recommendation"]
    best = rec["best"]
    other = next(r for r in rec["top"][1:] + rec["pareto"]
                 if round(100 * r["predicted_acc"], 1) != round(100 * best["predicted_acc"], 1))
    label = MODELS[best["config"]["model"]].label
    bad = dict(good, answer=(f"Train {label} at {best['config']['resolution']} px: predicted "
                             f"accuracy {round(100 * other['predicted_acc'], 1)} %. A ViT-L/16 "
                             "trained with RMSprop would do even better.\n\n" + good["answer"]))
    verdict = judge_transcript(bad, None, store=store)
    failed = {c.name: c.detail for c in verdict.checks if not c.passed}
    assert "not the recommended config's value" in failed["numbers grounded"]
    assert failed["names grounded"] == "named in no tool output: ViT-L/16, RMSprop"
    assert verdict.accuracy.score == 1 and not verdict.passed
    # the same sentence in a later follow-up answer is about another config: no pick rule
    later = dict(bad, messages=[*good["messages"], {"role": "human", "content": "and others?"}])
    failed = {c.name: c.detail for c in judge_transcript(later, None, store=store).checks
              if not c.passed}
    assert "recommended config" not in failed.get("numbers grounded", "")
    assert "names grounded" in failed


def test_completeness_reads_the_fields_in_the_users_language(good, store) -> None:  # noqa: F811
    """A German answer says "Lernrate" and "Ähnliche frühere Läufe", not "learning rate"."""
    from agent.judge import deterministic_checks

    rec = good["recommendation"]["best"]["config"]
    german = dict(good, answer=(
        f"**Empfehlung:** {MODELS[rec['model']].label}, vortrainiert, end-to-end, "
        f"{rec['resolution']} px, AdamW, Lernrate {rec['lr']:g}, Gewichtsabnahme "
        f"{rec['weight_decay']:g}, Batchgröße {rec['batch_size']}, {rec['epochs']} Epochen, "
        f"Augmentation {rec['augmentation']}; vorhergesagte Genauigkeit, Trainingszeit.\n\n"
        "**Warum** — die stärksten Faktoren: ... Punkte.\n\n### Alternativen\n- **Schneller**: ...\n\n"
        "### Ähnliche frühere Trainingsläufe\n- ..."))
    fields = next(c for c in deterministic_checks(german, store) if c.name == "all fields present")
    assert fields.passed, fields.detail


def test_the_judge_reads_failed_checks_as_sentences() -> None:
    from agent.prompts import judge_user

    checks = [{"name": "numbers grounded", "criterion": "accuracy", "passed": True, "detail": ""},
              {"name": "all fields present", "criterion": "completeness", "passed": False,
               "detail": "missing: reasons, similar runs"}]
    text = judge_user("an answer", {"recommended": {}}, checks)
    assert "1 of 2 passed" in text
    assert "- completeness: all fields present FAILED: missing: reasons, similar runs" in text
    assert "all 1 passed" in judge_user("an answer", {}, checks[:1])


def test_the_rubric_is_told_the_answers_language() -> None:
    from agent.judge import language_rule

    french = language_rule("**DenseNet-121, préentraîné** — les facteurs les plus forts sont dans la liste")
    assert "in French" in french and "'précision' = accuracy" in french
    assert language_rule("The best config is this one, and it has the highest accuracy") == ""
