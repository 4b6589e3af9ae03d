"""The held-back set loads, and each deterministic follow-up check passes a good reply and fails a
bad one (the issue's bad examples among them); the no-repeat rule; the language heuristic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from eval.agent.followup_checks import (
    check_answer,
    detect_language,
    language_check,
    stated_value,
    trait_comparisons,
)
from eval.agent.loading import load_scenario, load_scenarios
from eval.agent.metrics import evaluate, repeated_questions, summarize
from eval.agent.record import ScenarioRecord, TurnRecord
from eval.agent.scenario import Scenario, ScenarioError

HELDBACK = Path(__file__).resolve().parents[2] / "eval" / "heldback"
PICK = {"model": "resnet18", "pretrained": True, "resolution": 128, "lr": 0.001, "epochs": 10}


def turn(reply: str, **fields: Any) -> TurnRecord:
    return TurnRecord(index=2, user="q", reply=reply, **fields)


# --- the held-back set ---------------------------------------------------------------------------

def test_heldback_files_load_and_cover_the_new_kinds() -> None:
    scenarios = load_scenarios(directory=HELDBACK)
    assert len(scenarios) >= 16
    assert all(len(s.turns) >= 2 for s in scenarios), "every held-back scenario is multi-turn"
    assert all(s.truth.traits for s in scenarios)
    kinds = {t.expect.answers.kind for s in scenarios for t in s.turns if t.expect.answers}
    assert kinds == {"why_not", "why_pick", "hyperparameter", "device_time", "command",
                     "out_of_scope"}
    assert {t.expect.language for s in scenarios for t in s.turns} >= {"fr", "es", "de"}
    assert any(t.expect.asks == "budget" for s in scenarios for t in s.turns)
    assert any(t.expect.plan for s in scenarios for t in s.turns)
    assert any(t.expect.traits_unchanged for s in scenarios for t in s.turns)
    shipped = {s.name for s in load_scenarios()}
    assert not shipped & {s.name for s in scenarios}


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text("covers: [x]\npersona: p\n" + body, encoding="utf-8")
    return path


def test_budget_devices_of_the_catalogue_and_new_expectations(tmp_path: Path) -> None:
    ok = _write(tmp_path, "truth:\n  budget: {device: rtx4090, minutes: 120}\nturns:\n"
                "  - user: hi\n    expect:\n      asks: budget\n      language: fr\n"
                "      answers: {kind: why_not, other: ViT}\n      plan: {pretrained: false}\n")
    s = load_scenario(ok)
    assert s.truth.budget.device == "rtx4090" and s.turns[0].expect.asks == "budget"
    for body, field in (
            ("truth:\n  budget: {device: gtx9999}\nturns: [{user: hi}]\n", "truth.budget.device"),
            ("truth: {}\nturns:\n  - {user: hi, expect: {answers: {kind: why_not}}}\n", "answers"),
            ("truth: {}\nturns:\n  - {user: hi, expect: {plan: {colour: red}}}\n", "plan"),
            ("truth: {}\nturns:\n  - {user: hi, expect: {asks: gpu}}\n", "asks")):
        with pytest.raises(ScenarioError, match=field):
            load_scenario(_write(tmp_path, body))


# --- the follow-up checks ------------------------------------------------------------------------

def test_why_not() -> None:
    good = ("ViT-B/16 would reach a predicted 71.2 %, while ResNet-18 reaches 78.5 % on your "
            "data: with 3,000 images a ViT has too little data to learn from.")
    assert check_answer("why_not", good, turn(good), PICK, other="ViT") == (True, "")
    nonsense = ("The class entropy (bits) is 2.81, which is higher than the ResNet-18 model's "
                "2.81. The ViT gets 70.1 % and ResNet-18 75.0 %.")
    passed, detail = check_answer("why_not", nonsense, turn(nonsense), PICK, other="ViT")
    assert not passed and "compares a dataset trait" in detail
    one_pct = "A ViT is slower; ResNet-18 reaches 75.0 %."
    assert not check_answer("why_not", one_pct, turn(one_pct), PICK, other="ViT")[0]
    no_other = "ResNet-18 reaches 75.0 %, the runner-up 71.0 %."
    assert "does not name 'ConvNeXt'" in check_answer("why_not", no_other, turn(no_other), PICK,
                                                      other="ConvNeXt")[1]
    assert trait_comparisons("ResNet-18 is faster than ViT-B/16.") == []


def test_why_pick() -> None:
    good = "I picked ResNet-18 because with 3,000 images it is predicted at 78.5 %."
    assert check_answer("why_pick", good, turn(good), PICK)[0]
    no_number = "I picked ResNet-18 because it suits your data."  # the 18 is the model's name
    assert not check_answer("why_pick", no_number, turn(no_number), PICK)[0]
    other = "EfficientNet-B0 is predicted at 80 %."
    assert not check_answer("why_pick", other, turn(other), PICK)[0]


@pytest.mark.parametrize("param,good,bad", [
    ("lr", "For a pretrained ResNet-50 use a learning rate of 1e-4 with AdamW.",
     "For a pretrained ResNet-50 a small learning rate works best."),
    ("batch_size", "EfficientNet-B0: batch size 64 fits a T4.", "EfficientNet-B0 needs a batch."),
    ("epochs", "Train the ResNet-50 for 30 epochs.", "Train the ResNet-50 for a few epochs."),
])
def test_hyperparameter(param: str, good: str, bad: str) -> None:
    model = {"lr": "ResNet-50", "batch_size": "EfficientNet-B0", "epochs": "ResNet-50"}[param]
    assert check_answer("hyperparameter", good, turn(good), PICK, model=model, param=param)[0]
    assert not check_answer("hyperparameter", bad, turn(bad), PICK, model=model, param=param)[0]
    assert stated_value("lr 3e-4", "lr") == "3e-4" and stated_value("lr: 0.001", "lr") == "0.001"
    wrong_model = good.replace(model, "DenseNet-121")
    assert not check_answer("hyperparameter", wrong_model, turn(wrong_model), PICK, model=model,
                            param=param)[0]


def test_device_time() -> None:
    good = "On a T4 the same ResNet-18 config would take about 25 min instead of 8 min."
    assert check_answer("device_time", good, turn(good, plan=PICK), PICK, device="t4")[0]
    replaced = "On a T4 I would train MobileNetV3-Small instead: about 12 min."
    passed, detail = check_answer("device_time", replaced, turn(replaced), PICK, device="t4")
    assert not passed and "same model" in detail
    changed = turn(good, plan={**PICK, "model": "mobilenetv3_small_100"})
    assert "plan changed model" in check_answer("device_time", good, changed, PICK, device="t4")[1]
    no_time = "A T4 is slower for ResNet-18."
    assert not check_answer("device_time", no_time, turn(no_time), PICK, device="t4")[0]


def test_command() -> None:
    good = "Run:\n\n    metallmix train data/xrays --model resnet18 --epochs 10 --lr 0.001"
    assert check_answer("command", good, turn(good, plan=PICK), PICK)[0]
    bad = "python train.py --model resnet18"
    passed, detail = check_answer("command", bad, turn(bad, plan=PICK), PICK)
    assert not passed and "train.py" in detail and "metallmix train" in detail


def test_out_of_scope() -> None:
    good = ("Liver segmentation in 3-D CT is outside what I do: I recommend models and settings "
            "for image classification only.")
    assert check_answer("out_of_scope", good, turn(good), None)[0]
    recipe = ("For segmentation I would train DenseNet-121, pretrained, at 224 px: predicted "
              "accuracy 82.3 %. I help with classification.")
    passed, detail = check_answer("out_of_scope", recipe, turn(recipe), None)
    assert not passed and "82.3" in detail
    recommended = turn(good, new_recommendation=True)
    assert not check_answer("out_of_scope", good, recommended, None)[0]


# --- language ------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,lang", [
    ("Je vous recommande un ResNet-18 pré-entraîné : la précision prévue est de 78,5 % et "
     "l'entraînement prendrait 12 min sur le T4.", "fr"),
    ("Ich empfehle ein vortrainiertes ResNet-18: die erwartete Genauigkeit ist 78,5 % und das "
     "Training dauert auf der T4 etwa 12 Minuten.", "de"),
    ("Le recomiendo un ResNet-18 preentrenado: la precisión prevista es del 78,5 % y el "
     "entrenamiento tardaría 12 min en la T4.", "es"),
    ("I recommend a pretrained ResNet-18: the predicted accuracy is 78.5 % and training would "
     "take 12 min on the T4.", "en"),
])
def test_language_heuristic(text: str, lang: str) -> None:
    assert detect_language(text) == lang
    assert language_check(text, lang)[0]
    assert not language_check(text, "fr" if lang != "fr" else "en")[0]


def test_language_ignores_model_names_and_numbers() -> None:
    assert detect_language("ResNet-18, 78.5 %, 12 min") is None


# --- no question twice, fields, per-kind totals --------------------------------------------------

def _asked(index: int, user: str, pending: str | None, traits: dict[str, Any] | None = None,
           budget: str | None = None) -> TurnRecord:
    return TurnRecord(index=index, user=user, reply="?", pending_question=pending,
                      traits=traits or {}, budget=budget)


def test_no_question_twice() -> None:
    vague = [_asked(1, "a few thousand x-rays", "n_instances", {"modality": "x-ray"}),
             _asked(2, "maybe a few thousand", "n_instances", {"modality": "x-ray"})]
    assert repeated_questions(ScenarioRecord(scenario="s", backend="b", turns=vague)) == [
        "n_instances asked in turns 1 and 2"]
    chatter = [_asked(1, "hi", "n_instances"), _asked(2, "tell me a joke", "n_instances"),
               _asked(3, "no idea", "n_instances")]  # one repeat excused, not two
    assert repeated_questions(ScenarioRecord(scenario="s", backend="b", turns=chatter)) == [
        "n_instances asked in turns 2 and 3"]
    budget = [_asked(1, "3,000 x-rays, 2 classes", "budget"), _asked(2, "hmm", "budget")]
    assert repeated_questions(ScenarioRecord(scenario="s", backend="b", turns=budget)) == []
    fine = [_asked(1, "x-rays", "n_instances"), _asked(2, "3,000", "n_classes")]
    assert repeated_questions(ScenarioRecord(scenario="s", backend="b", turns=fine)) == []


def _scenario(**expect: Any) -> Scenario:
    return Scenario.model_validate({
        "name": "s", "covers": ["x"], "persona": "p",
        "truth": {"traits": {"n_instances": 3000}, "budget": {"device": "rtx4090", "minutes": 120}},
        "turns": [{"user": "3,000 x-rays"}, {"user": "why not a ViT?", "expect": expect}],
        "expect": {"recommendation": False, "min_trait_accuracy": 0.0, "grounded": False}})


def test_evaluate_scores_budget_fields_followups_plan_and_repeats() -> None:
    s = _scenario(answers={"kind": "why_not", "other": "ViT"}, plan={"pretrained": False},
                  language="en")
    reply = "ViT-B/16 would reach 71.2 % and ResNet-18 reaches 78.5 % for this data."
    record = ScenarioRecord(
        scenario="s", backend="b", traits={"n_instances": 3000},
        constraints={"budget": "my RTX 4090 for about 2 hours"},
        turns=[TurnRecord(index=1, user="3,000 x-rays", reply="Ranked.", plan=PICK),
               TurnRecord(index=2, user="why not a ViT?", reply=reply,
                          plan={**PICK, "pretrained": False})])
    result = evaluate(s, record)
    assert result["outcome"] == "pass", result["failed"]
    assert result["metrics"]["fields"] == {"correct": 3, "total": 3}
    assert result["metrics"]["followups"] == [{"kind": "why_not", "passed": True}]
    slow = record.model_copy(update={"constraints": {"budget": "my RTX 4090 for 3 hours"}})
    traits = evaluate(s, slow)["metrics"]["traits"]
    assert traits["budget.device"]["correct"] and not traits["budget.minutes"]["correct"]
    repeated = record.model_copy(update={"turns": [
        record.turns[0].model_copy(update={"pending_question": "n_classes"}),
        record.turns[1].model_copy(update={"pending_question": "n_classes", "plan": PICK,
                                           "traits": {"n_instances": 3000}})]})
    bad = evaluate(s, repeated)
    assert {f.split(":")[0] for f in bad["failed"]} == {
        "no question asked twice", "turn 2 plan {'pretrained'"}
    total = summarize([result, bad])
    assert total["fields"] == 6 and total["questions_asked_twice"] == 1
    assert total["followups_by_kind"] == {"why_not": {"passed": 2, "total": 2}}


def test_traits_unchanged_and_imbalance_from_counts() -> None:
    s = Scenario.model_validate({
        "name": "s", "covers": ["x"], "persona": "p",
        "truth": {"traits": {"imbalance_ratio": 9.0}},
        "turns": [{"user": "a"}, {"user": "b", "expect": {"traits_unchanged": True}}],
        "expect": {"recommendation": False}})
    measured = {"n_instances": 120, "height": 32}
    same = ScenarioRecord(scenario="s", backend="b", traits={"class_counts": [1800, 200]}, turns=[
        TurnRecord(index=1, user="a", measured=measured),
        TurnRecord(index=2, user="b", measured=measured)])
    assert evaluate(s, same)["outcome"] == "pass", evaluate(s, same)["failed"]
    moved = same.model_copy(update={"turns": [same.turns[0], same.turns[1].model_copy(
        update={"measured": {**measured, "height": 64}})]})
    assert evaluate(s, moved)["failed"] == ["turn 2 measured traits unchanged: changed: ['height']"]
