"""The meaning checks of the grounding (issue 16 item 3): answers whose every number is a tool's
number but whose sentences say something the tools contradict. The bad examples are what the real
1.5B model wrote (abridged); the good ones are real-looking recommendation answers and comparisons
of values that differ. Sources are shaped like `tools.advice.rank_output` / `explain_output`, and
one test uses a real Recommendation of the test store."""

from __future__ import annotations

import json

import pytest

from agent.grounding import check_answer, meaning_violations

USER = "I have 3,000 dermoscopy images in 5 classes; they're big, like 1024 px. One hour on a T4."


def _config(model: str, resolution: int, lr: float, epochs: int, **kw: object) -> dict:
    return {"model": model, "pretrained": True, "scheme": "end_to_end", "resolution": resolution,
            "optimizer": "adamw", "lr": lr, "weight_decay": 0.0001, "batch_size": 64,
            "epochs": epochs, "augmentation": "light", "label_smoothing": 0.0, **kw}


PICK = _config("resnet18", 64, 0.0001, 10)
VIT = _config("vit_tiny_patch16_224", 224, 0.0001, 10)
RESNET50 = _config("resnet50", 128, 0.001, 10)
FASTER = _config("mobilenetv3_small_100", 64, 0.001, 5)
MORE = _config("densenet121", 224, 0.0001, 30)


def _ranked(rank: int, config: dict, label: str, acc: float, lo: float, hi: float,
            time: str) -> dict:
    return {"rank": rank, "config": config, "model_name": label, "predicted_accuracy_pct": acc,
            "interval_80_pct": [lo, hi], "training_time": time, "time_is_rough": True}


RANK = json.dumps({
    "traits_used": {"n_instances": 3000, "n_classes": 5, "imbalance_ratio": 2.9,
                    "class_entropy": 2.81, "height": 1024, "width": 1024, "channels": 3,
                    "class_size_mean": 600.0, "modality": "dermoscopy"},
    "unknown_traits": [],
    "budget": "60 min on NVIDIA T4 (assumed: a T4 of your own)",
    "top": [_ranked(1, PICK, "ResNet-18", 81.3, 70.2, 90.5, "12 min on t4"),
            _ranked(2, VIT, "ViT-Tiny/16", 79.8, 66.0, 91.0, "25 min on t4"),
            _ranked(3, RESNET50, "ResNet-50", 78.9, 64.1, 90.2, "40 min on t4")],
    "why_best": ["images per class mean 600 → −3.1 points", "class entropy (bits) 2.81 → −1.2 "
                 "points", "model ResNet-18 → +2.0 points"],
    "faster_alternative": _ranked(9, FASTER, "MobileNetV3-Small", 80.1, 67.5, 90.0, "3 min on t4"),
    "more_accurate_alternative": dict(_ranked(1, MORE, "DenseNet-121", 83.0, 71.0, 93.1,
                                              "4.3 h on t4"), kind="beyond_budget"),
    "candidates_scored": 1830})
EXPLAIN = json.dumps({
    "config": VIT, "model_name": "ViT-Tiny/16", "predicted_accuracy_pct": 79.8,
    "interval_80_pct": [66.0, 91.0], "training_time": "25 min on t4",
    "average_over_past_runs_pct": 76.5,
    "factors": [{"factor": "class entropy (bits)", "value": "2.81", "points": -1.2},
                {"factor": "model", "value": "ViT-Tiny/16", "points": 0.4}]})
SOURCES = [RANK, EXPLAIN, USER]
PICK_SOURCES = [RANK]


def meaning(answer: str, pick: dict | None = PICK) -> list[str]:
    return [str(v) for v in meaning_violations(answer, SOURCES, pick=pick,
                                               pick_sources=PICK_SOURCES if pick else ())]


def checked(answer: str, pick: dict | None = PICK) -> list[str]:
    return [str(v) for v in check_answer(answer, SOURCES, pick=pick,
                                         pick_sources=PICK_SOURCES if pick else ())]


# --- the real bad examples: each fails ------------------------------------------------------------

def test_a_trait_compared_with_a_model_and_equal_values_contrasted() -> None:
    # (a) written by the 1.5B model in a "why not ViT?" follow-up
    answer = ('The class entropy (bits) is 2.81, which is higher than the ResNet-18 model\'s 2.81. '
              'The model is "ViT-Tiny/16", which is lower than the ResNet-18 model\'s.')
    found = meaning(answer, pick=None)
    assert "2.81 higher than 2.81 (compares two equal values)" in found
    assert ("class entropy (bits) is 2.81, which is higher than the ResNet-18 model's "
            "(class entropy is the dataset's, not ResNet-18's)") in found
    assert ("lower than the ResNet-18 model's (compares with no value: name what is compared)"
            in found)
    # the number check alone let it through: every number is a tool's
    from agent.grounding import number_violations
    assert number_violations(answer, SOURCES) == []
    assert checked(answer, pick=None) == found


@pytest.mark.parametrize(("answer", "expected"), [
    ("ResNet-18's class entropy is 2.81.",
     "ResNet-18's class entropy (class entropy is the dataset's, not ResNet-18's)"),
    ("The imbalance of ViT-Tiny/16 is 2.9, so it struggles.",
     "imbalance of ViT-Tiny/16 (imbalance is the dataset's, not ViT-Tiny/16's)"),
    ("ViT-Tiny/16 has a higher class entropy.",
     "ViT-Tiny/16 has a higher class entropy (class entropy is the dataset's, not ViT-Tiny/16's)"),
    ("The images per class is 600, more than ResNet-50's.",
     "images per class is 600, more than ResNet-50's (images per class is the dataset's, not "
     "ResNet-50's)"),
    ("That is the ResNet-18 model's 2.81 at work.",
     "ResNet-18 model's 2.81 (class entropy is the dataset's, not ResNet-18's)"),
])
def test_dataset_traits_are_never_a_models(answer: str, expected: str) -> None:
    assert expected in meaning(answer, pick=None)


def test_a_more_accurate_alternative_that_is_less_accurate_fails() -> None:
    # (b) the header's pick is ResNet-18 at 81.3 %; ResNet-50 is predicted 78.9 %
    answer = ("Recommended: ResNet-18, pretrained, end-to-end, 64 px, lr 0.0001, 10 epochs: "
              "81.3 % in 12 min.\nA more accurate alternative is ResNet-50 at 128 px (78.9 %).")
    assert meaning(answer) == [
        "more accurate alternative is ResNet-50 (ResNet-50's predicted accuracy 78.9 % vs the "
        "recommended config's 81.3 %: the numbers say otherwise)"]
    # "than" names the reference; "faster" / "slower" are checked the same way
    assert meaning("ViT-Tiny/16 is more accurate than ResNet-18.", pick=None) == [
        "ViT-Tiny/16 is more accurate (ViT-Tiny/16's predicted accuracy 79.8 % vs ResNet-18's "
        "81.3 %: the numbers say otherwise)"]
    assert meaning("DenseNet-121 trains faster than ResNet-18.", pick=None) == [
        "DenseNet-121 trains faster (DenseNet-121's predicted time 4.3 h vs ResNet-18's 12 min: "
        "the numbers say otherwise)"]
    # in a labelled block, as small models write the alternatives
    block = ("**Recommended:** ResNet-18 at 64 px, lr 1e-4, 10 epochs, 81.3 %, 12 min.\n\n"
             "**More accurate alternative:**\n- Model: ViT-Tiny/16\n- Accuracy: 79.8 %")
    assert [v.split(" (")[0] for v in meaning(block)] == ["More accurate ViT-Tiny/16"]


def test_a_config_over_the_budget_called_within_it_fails() -> None:
    # (c) the 4.3 h DenseNet-121 "within the budget" of one hour
    answer = ("For more accuracy, DenseNet-121 at 224 px reaches 83 % in 4.3 h, within the budget "
              "of one hour.")
    assert meaning(answer) == ["4.3 h within the budget (longer than the budget's 60 min)"]
    assert meaning("DenseNet-121 also fits within your budget.") == [
        "DenseNet-121 fits within your budget (DenseNet-121's predicted time 4.3 h is longer than "
        "the budget's 60 min)"]


def test_a_claimed_recommendation_must_be_the_pick() -> None:
    # (d) after "they're big, like 1024 px" the reply said 1024 px; the ranked config is 64 px
    answer = "I recommend ResNet-18 at 1024 px with a learning rate of 0.0001 for 10 epochs."
    assert meaning(answer) == ["1024 px (not the recommended config's value)"]
    assert "1024 px (not the recommended config's value)" in checked(answer)
    # the number check alone accepts it: 1024 is the user's (and the dataset's) number
    from agent.grounding import number_violations
    assert number_violations(answer, SOURCES, pick=PICK, pick_sources=PICK_SOURCES) == []
    # the field lines at the head of a recommendation, and another model claimed
    fields = ("**Recommended Config:**\n- **Model:** ResNet-18\n- **Resolution:** 1024 px\n"
              "- **Learning Rate:** 0.0001\n- **Epochs:** 30")
    assert meaning(fields) == ["1024 px (not the recommended config's value)",
                               "30 (not the recommended config's value)"]
    assert meaning("My recommendation is ViT-Tiny/16 at 224 px.") == [
        "ViT-Tiny/16 (not the recommended model ResNet-18)"]
    # a value is the pick's up to the precision it is written to (the card writes "lr 8e-03")
    odd = {**PICK, "lr": 0.00764303}
    assert meaning_violations("I recommend ResNet-18, pretrained, end_to_end, 64 px, lr 8e-03, "
                              "10 ep.", [], pick=odd) == []
    assert [str(v) for v in meaning_violations("I recommend ResNet-18 at 64 px, lr 1e-3.", [],
                                               pick=odd)] == [
        "1e-3 (not the recommended config's value)"]


# --- good answers: each passes --------------------------------------------------------------------

GOOD = [
    # the six lines of a careful answer (agent.testing.facts_answer's shape)
    "Recommended: ResNet-18, pretrained, end_to_end, 64 px, adamw, learning rate 0.0001, weight "
    "decay 0.0001, batch size 64, 10 epochs, light augmentation.\nPredicted accuracy: 81.3 % (80 % "
    "interval 70.2-90.5 %), training time 12 min on t4.\nWhy: images per class mean 600 → −3.1 "
    "points; class entropy (bits) 2.81 → −1.2 points.\nAlternatives: faster - MobileNetV3-Small, "
    "80.1 %, 3 min on t4; more accurate - DenseNet-121, 83.0 %, 4.3 h on t4.",
    # comparisons of values that differ, in both directions
    "I recommend ResNet-18 at 64 px (lr 1e-4, 10 epochs): 81.3 % in about 12 minutes, well within "
    "your 1-hour budget. ResNet-18 is more accurate and faster than ViT-Tiny/16 (79.8 % in "
    "25 min). A faster alternative is MobileNetV3-Small at 64 px: 80.1 % in 3 min, slightly less "
    "accurate. DenseNet-121 at 224 px is more accurate (83.0 %) but takes 4.3 h, outside your "
    "budget.",
    # dataset traits said of the dataset, next to models
    "Your dataset has a class entropy of 2.81 bits and an imbalance of 2.9; with 600 images per "
    "class, ResNet-18 is predicted 81.3 %, higher than ViT-Tiny/16's 79.8 %. The images are "
    "1024 px, so train ResNet-18 at 64 px to fit the hour.",
    # a field list at the head, then the alternative's own fields
    "**Recommended Config:**\n- **Model:** ResNet-18\n- **Resolution:** 64 px\n- **Learning "
    "Rate:** 0.0001\n- **Epochs:** 10\n\n**Predicted accuracy:** 81.3 %, 12 min.\n\n"
    "**Faster Alternative:**\n- **Model:** MobileNetV3-Small\n- **Resolution:** 64 px\n- "
    "**Epochs:** 5\n- 80.1 % in 3 min",
    # a negated claim and an honest "no faster" are no claims
    "MobileNetV3-Small is not more accurate than ResNet-18. ResNet-50 does not fit within your "
    "budget advantageously either: it takes 40 min.",
]


@pytest.mark.parametrize("answer", GOOD)
def test_good_answers_pass(answer: str) -> None:
    assert meaning(answer) == [], answer
    assert checked(answer) == [], answer


GOOD_FOLLOW_UPS = [
    # ellipsis of a quantity after a possessive, and a "why not" that compares correctly
    "ViT-Tiny/16's predicted accuracy (79.8 %) is lower than ResNet-18's, and ViT-Tiny/16 takes "
    "longer (25 min); the class imbalance (2.9) costs both.",
    "Why not ViT-Tiny/16? With 600 images per class and a class entropy of 2.81, ViT-Tiny/16 is "
    "predicted 79.8 % in 25 min: it is less accurate and slower than ResNet-18 (81.3 % in 12 min).",
    "DenseNet-121 is more accurate than ResNet-18, but DenseNet-121 takes 4.3 h and does not fit "
    "within your one-hour budget.",
]


@pytest.mark.parametrize("answer", GOOD_FOLLOW_UPS)
def test_good_follow_up_answers_pass(answer: str) -> None:
    assert meaning(answer, pick=None) == [], answer
    assert checked(answer, pick=None) == [], answer


def test_follow_up_answers_without_a_pick_check_only_what_they_compare() -> None:
    # no pick: "a more accurate alternative" has no reference, "than X" still has one
    assert meaning("A more accurate alternative is ResNet-50 (78.9 %).", pick=None) == []
    assert meaning("ResNet-18 is more accurate than ViT-Tiny/16: 81.3 % vs 79.8 %.",
                   pick=None) == []


def test_on_a_real_recommendation(store) -> None:  # noqa: F811 - the shared store fixture
    """The answer the scripted careful model writes from a real Recommendation passes; the same
    answer claiming the user's 512 px, or calling the faster alternative more accurate, fails."""
    from agent import facts
    from agent.testing import recommendation_answer
    from knowledge.metafeatures import MetaFeatures
    from knowledge.recommend import get_advisor
    from tools.advice import rank_output

    meta = MetaFeatures(n_instances=3000, n_classes=3, height=512, width=512, channels=1,
                        modality="x-ray")
    rec = get_advisor(store.path).recommend(meta, top_k=5, budget="one hour on a T4")
    sources = facts.grounding_sources([json.dumps(rank_output(rec))],
                                      ["3,000 x-rays, 3 classes, 512 px. One hour on a T4."], rec)
    pick = facts.pick_config(rec, None)
    pick_sources = facts.pick_sources(rec, None)
    answer = recommendation_answer(rec)
    assert meaning_violations(answer, sources, pick=pick, pick_sources=pick_sources) == []
    wrong = answer.replace(f"{pick['resolution']} px", "512 px", 1)
    assert [str(v) for v in meaning_violations(wrong, sources, pick=pick,
                                               pick_sources=pick_sources)] == [
        "512 px (not the recommended config's value)"]
    # the faster alternative (never above the pick's accuracy) called "more accurate", with its
    # own accuracy written next to it
    assert rec.faster is not None
    fast = facts.ranked_facts(rec.faster)
    claim = (f"{answer}\nA more accurate alternative is {fast['model_name']} "
             f"({fast['predicted_accuracy_pct']} %).")
    found = [str(v) for v in meaning_violations(claim, sources, pick=pick,
                                                pick_sources=pick_sources)]
    assert len(found) == 1 and "predicted accuracy" in found[0], found


@pytest.mark.parametrize("answer, found", [
    ("Récommandé : DenseNet-121, prétrained ou non, 224 px, taux d'apprentissage 85.6 % (80 %)",
     ["prétrained ou non (pretrained or not: say which)",
      "taux d'apprentissage 85.6 % (an accuracy called a learning rate)"]),
    ("Recommended: densenet121, pretrained or from scratch, end_to_end",
     ["pretrained or from scratch (pretrained or not: say which)"]),
    ("Recommended: densenet121, pretrained, learning rate 0.0001, predicted accuracy 85.6 %", []),
])
def test_settings_called_by_their_own_names(answer: str, found: list[str]) -> None:
    assert [str(v) for v in meaning_violations(answer, ['{"predicted_accuracy_pct": 85.6}'])] == found
