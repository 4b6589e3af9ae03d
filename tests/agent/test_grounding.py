"""The grounding check on real-looking answers: what a 1.5B model wrote (or could have written)
against tool outputs shaped and valued like the real ones (from eval/results/real_1.5b_*).

Both directions: legitimate restatements must pass (units, notations, rounding, the user's own
numbers), invented, recomputed or misplaced numbers and invented names must not."""

from __future__ import annotations

import json

import pytest

from agent.entities import find_mentions, resolve_model, ungrounded_names
from agent.grounding import check_answer, find_numbers, number_violations, ungrounded_numbers

USER = "Hi! I have about 3,000 chest X-ray images in 3 classes, 512 px grayscale. I can train for one hour on a T4."

PICK = {"model": "densenet121", "pretrained": True, "scheme": "end_to_end", "resolution": 128,
        "optimizer": "adamw", "lr": 0.01, "weight_decay": 0.01, "batch_size": 64, "epochs": 30,
        "augmentation": "strong", "label_smoothing": 0.0}
RUNNER_UP = {**PICK, "pretrained": False, "resolution": 224, "lr": 0.0001, "weight_decay": 0.0,
             "batch_size": 128, "augmentation": "light", "label_smoothing": 0.1}
FASTER = {"model": "mobilenetv3_small_100", "pretrained": True, "scheme": "end_to_end",
          "resolution": 224, "optimizer": "adamw", "lr": 0.0001, "weight_decay": 0.01,
          "batch_size": 64, "epochs": 3, "augmentation": "light", "label_smoothing": 0.0}

RANK = json.dumps({
    "traits_used": {"n_instances": 3000, "n_classes": 3, "height": 512, "width": 512,
                    "channels": 1, "class_size_mean": 1000.0, "modality": "x-ray"},
    "budget": "60 min on NVIDIA T4",
    "top": [{"rank": 1, "config": PICK, "model_name": "DenseNet-121", "predicted_accuracy_pct": 72.7,
             "interval_80_pct": [57.4, 93.4], "training_time": "5 min on t4", "time_is_rough": True},
            {"rank": 2, "config": RUNNER_UP, "model_name": "DenseNet-121",
             "predicted_accuracy_pct": 72.6, "interval_80_pct": [57.2, 94.6], "training_time": "18 min on t4",
             "time_is_rough": True}],
    "why_best": ["images per class mean 1,000 → −7.1 points", "training scheme end_to_end → +5.2 points"],
    "faster_alternative": {"rank": 15, "config": FASTER, "model_name": "MobileNetV3-Small",
                           "predicted_accuracy_pct": 71.6, "interval_80_pct": [41.2, 93.8],
                           "training_time": "19 s on t4"},
    "candidates_scored": 2794})
EXPLAIN = json.dumps({
    "config": PICK, "model_name": "DenseNet-121", "predicted_accuracy_pct": 72.7,
    "interval_80_pct": [57.4, 93.4], "training_time": "5 min on t4", "average_over_past_runs_pct": 76.5,
    "factors": [{"factor": "images per class", "value": "mean 1,000", "points": -7.08},
                {"factor": "training scheme", "value": "end_to_end", "points": 5.2}]})
SIMILAR = json.dumps({"runs": [
    {"run_id": "968ac497d94519a2c45a3a5765ee8694", "dataset": "medmnist:pneumoniamnist",
     "model": "vit_base_patch16_224.dino", "scheme": "linear_probing", "resolution": 224,
     "test_acc_pct": 91.6, "similarity": 0.62,
     "card": "PneumoniaMNIST (x-ray, 2 classes, 4,708 train images, imbalance 2.9, 224 px "
             "grayscale) — DINO ViT-B/16 pretrained, linear probe, 224 px, AdamW lr 1e-4 wd "
             "1e-2, 100 epochs, batch 64, no aug → test acc 91.6% ± 0.3, AUC 98.9% (published: "
             "Doerrich et al. 2025)"},
    {"run_id": "d545aec5be3379066666039d333c8737", "dataset": "medmnist:breastmnist",
     "model": "alexnet", "scheme": "end_to_end", "resolution": 128, "test_acc_pct": 90.6,
     "similarity": 0.423,
     "card": "BreastMNIST (ultrasound, 2 classes, 546 train images, imbalance 2.7, 224 px "
             "grayscale) — AlexNet pretrained, end-to-end, 128 px, AdamW lr 1e-4 wd 1e-2, 100 "
             "epochs, batch 64, no aug → test acc 90.6% ± 1.1, AUC 94.0% (published: Doerrich et "
             "al. 2025)"}]})
SOURCES = [RANK, EXPLAIN, SIMILAR, USER]
PICK_SOURCES = [RANK, EXPLAIN]

# Written by the real 1.5B model (eval/results/real_1.5b_transcript.json, turn 1), abridged.
REAL_ANSWER = """**Recommended Config:**
- **Model:** DenseNet-121
- **Pretrained:** Yes
- **Training Scheme:** End-to-End
- **Resolution:** 128 px
- **Optimizer:** AdamW
- **Learning Rate:** 0.01
- **Weight Decay:** 0.01
- **Batch Size:** 64
- **Epochs:** 30
- **Augmentation:** Strong

**Predicted Accuracy (80% Interval):**
- **72.7%**
- **Interval:** [57.4%, 93.4%]

**Training Time:**
- **5 min on t4 (rough estimate)**

**Why:**
- **Images per Class Mean 1,000 → −7.1 points**
- **Training Scheme End_to_End → +5.2 points**

**Similar Past Runs:**
- **PneumoniaMNIST (x-ray, 2 classes, 4,708 train images, imbalance 2.9, 224 px grayscale) — DINO ViT-B/16 pretrained, linear probe, 224 px, AdamW lr 1e-4 wd 1e-2, 100 epochs, batch 64, no aug → test acc 91.6% ± 0.3, AUC 98.9% (published: Doerrich et al. 2025)**

**One Faster Alternative:**
- **Model:** MobileNetV3_Small_100
- **Pretrained:** Yes
- **Epochs:** 3"""


def violations(answer: str, pick: dict | None = PICK) -> list[str]:
    return [str(v) for v in check_answer(answer, SOURCES, pick=pick,
                                         pick_sources=PICK_SOURCES if pick else ())]


@pytest.mark.parametrize("answer", [
    REAL_ANSWER,
    # the same facts in other units, notations and roundings
    "Train DenseNet-121 (pretrained, end-to-end) at 128 px: AdamW, learning rate 1e-2, weight "
    "decay 1 × 10^-2, batch size 64, 30 epochs, strong augmentation. Predicted accuracy 73 % "
    "(80 % interval 57.4–93.4), about 0.08 h on a T4.",
    "| model | px | lr | acc |\n|---|---|---|---|\n| DenseNet-121 | 128 | 0.01 | 72.7 % |\n"
    "| MobileNetV3-Small | 224 | 1e-04 | 71.6 % |",
    # the user's own numbers, a rounded time, alternatives attributed to the right model
    "For your 3k grayscale x-rays (3 classes, 512x512), DenseNet-121 fits your 60-minute budget. "
    "A faster option is MobileNetV3-Small: 71.6 % in 19 s. The runner-up DenseNet-121 from "
    "scratch at 224 px reaches 72.6 % in 18 min.",
    # restating past runs with their spread, and a family name the sources support
    "Similar past runs: on PneumoniaMNIST a DINO ViT reached 91.6 % ± 0.3; AlexNet reached "
    "90.6 % ± 1.1 on BreastMNIST (run 968ac497). ImageNet-pretrained weights help.",
    # fractions of a percentage and points
    "Images per class (1,000) cost about 7.1 accuracy points; accuracy 0.727 predicted.",
])
def test_legitimate_restatements_pass(answer: str) -> None:
    assert violations(answer) == []


@pytest.mark.parametrize(("answer", "expected"), [
    # the spread of another run glued to a real value (seen: "71.9% ± 0.3")
    ("DenseNet-121 is predicted at 72.7 % ± 0.3.", ["0.3 (not the spread of 72.7 %)"]),
    # a number of another config presented as the pick's
    ("Train DenseNet-121 at 128 px: predicted accuracy 72.6 %.",
     ["72.6 % (not the recommended config's value)"]),
    ("Train DenseNet-121 at 224 px with learning rate 0.0001.",
     ["224 px (not the recommended config's value)", "0.0001 (not the recommended config's value)"]),
    # a number of one model attributed to another
    ("A faster option is MobileNetV3-Small at 72.7 % in 5 min.",
     ["72.7 % (not MobileNetV3-Small's value)", "5 min (not MobileNetV3-Small's value)"]),
    # right value, wrong kind: 64 is a batch size, 30 epochs, 0.01 no learning rate of a faster model
    ("Use 64 epochs and a batch size of 30.", ["64 epochs", "30"]),
    # recomputed or invented
    ("Training takes 45 minutes and reaches 97.3 % accuracy.", ["45 minutes", "97.3 %"]),
    ("It is 4.2x faster.", ["4.2x"]),
])
def test_invented_or_misplaced_numbers_fail(answer: str, expected: list[str]) -> None:
    assert violations(answer) == expected


def test_invented_names_fail_and_sourced_names_pass() -> None:
    answer = ("Instead of DenseNet-121 try ViT-L/16 or ConvNeXt-T with RMSprop, as on CIFAR-10 "
              "(run 1234abcd5678); a DINO ViT-B/16 linear probe did well on PneumoniaMNIST.")
    assert [v.text for v in check_answer(answer, SOURCES)] == [
        "ViT-L/16", "ConvNeXt-T", "RMSprop", "CIFAR-10", "1234abcd5678"]
    # what the user says is a source too
    assert ungrounded_names("Why not a ViT-L?", [*SOURCES, "Should I use a ViT-L?"]) == []
    assert ungrounded_names("Adam works; LoRA or knowledge distillation do not apply.", SOURCES) \
        == ["LoRA", "knowledge distillation"]


def test_pick_rules_apply_only_at_the_head_of_a_recommendation() -> None:
    # after an alternative is introduced, another config's numbers are fine
    answer = "Train DenseNet-121 at 128 px (72.7 %). Alternatives: DenseNet-121 at 224 px, 72.6 %."
    assert violations(answer) == []
    # a follow-up answer (no pick) may discuss any config's numbers
    assert violations("Predicted accuracy 72.6 % for the 224 px variant.", pick=None) == []


def test_number_kinds_and_notations() -> None:
    kinds = [n.kind for n in find_numbers("lr 3e-4, wd 1e-2, batch 64, 30 epochs, 224 px, "
                                          "512x512, 21.2 h, 72.7 % ± 0.3, −6.9 points, "
                                          "3,000 images, 2.5x")]
    assert kinds == ["lr", "wd", "batch", "epochs", "px", "px", "px", "dur", "pct", "pm", "points",
                     "count", "ratio"]
    assert [n.value for n in find_numbers("3 × 10^-4 and 3×10⁻⁴")] == pytest.approx([3e-4, 3e-4])
    assert find_numbers("ResNet-18, ViT-B/16, efficientnet_b4, densenet121, run 968ac497d9") == []


def test_durations_convert_units() -> None:
    sources = ['{"time": "76 min on cpu", "predicted_seconds": 4561.2}']
    assert number_violations("about 1.3 h, i.e. 4,561 s or 76 minutes", sources) == []
    assert [v.text for v in number_violations("1.5 h", sources)] == ["1.5 h"]


def test_ungrounded_numbers_keeps_its_plain_form() -> None:
    assert ungrounded_numbers("ResNet-18 reaches 97.3 % with lr 0.01", SOURCES) == ["97.3"]


def test_model_names_resolve() -> None:
    assert [m.kind for m in find_mentions("ViTs are vital; ResNet-based models")] == ["model", "model"]
    assert resolve_model("ViT") == "vit_tiny_patch16_224"
    assert resolve_model("DINO ViT-B/16") == "vit_base_patch16_224.dino"
    assert resolve_model("MobileNetV3") == "mobilenetv3_small_100"
    assert resolve_model("ViT-L") is None


def test_a_users_message_grounds_traits_but_not_outcomes() -> None:
    from agent.grounding import user_source

    pasted = ("README: our model reaches 99.7 % accuracy (± 0.2) on 8,000 patches, 6 classes, "
              "30 epochs at lr 1e-3; I have 3 hours on a T4.")
    source = user_source(pasted)
    assert "99.7" not in source and "0.2" not in source
    assert [str(v) for v in check_answer("Training reached 99.7 % accuracy.", [source])] == ["99.7 %"]
    assert check_answer("You have 8,000 patches, 6 classes and 3 hours.", [source]) == []


def test_claims_of_a_training_run_need_a_launch() -> None:
    from agent.grounding import launch_violations, launched_ok

    claim = "Done! Training finished with 99.7 % accuracy."
    assert [v.text for v in launch_violations(claim, launched=False)] == ["Training finished"]
    assert launch_violations(claim, launched=True) == []
    for fine in ("Once training is done, compare it with the similar runs.",
                 "Training this config takes about 3 min on your CPU."):
        assert launch_violations(fine, launched=False) == []
    refused = {"tool": "launch_training", "output": '{"error": "needs confirmation"}'}
    ran = {"tool": "launch_training", "output": '{"run_id": "abc", "status": "ok"}'}
    assert not launched_ok([refused]) and launched_ok([refused, ran])


def test_a_dataset_named_in_passing_does_not_claim_the_next_lines_numbers() -> None:
    card = ("- ImageNet-pretrained weights yes → +9.3 points\n"
            "- input resolution 64 px (1 of native) → +1.3 points")
    answer = "### Why\n" + card
    assert check_answer(answer, [card]) == []
    assert [n.kind for n in find_numbers("224 px (3.5 of native)")] == ["px", "ratio"]
    assert [str(v) for v in check_answer("input resolution 64 px (7.5 of native)", [card])] == [
        "7.5 of native"]


# --- the answer must state the pick (issue 13 item 5) --------------------------------------------

PICK_ACC = 72.7349  # the pick's predicted accuracy (%), as in RANK / EXPLAIN rounded to 72.7
PICK_SECONDS = 301.0  # its predicted time, "5 min" as format_seconds shows it


def unstated(answer: str, pick: dict = PICK, accuracy: float | None = PICK_ACC,
             seconds: float | None = PICK_SECONDS) -> list[str]:
    from agent.grounding import unstated_pick

    return [str(v) for v in unstated_pick(answer, pick, accuracy_pct=accuracy, seconds=seconds)]


def test_an_answer_that_never_states_the_pick_fails_naming_what_is_missing() -> None:
    # it passes the number and name checks (nothing to check): only the new rule catches it
    assert violations("I like turtles.") == []
    assert unstated("I like turtles.") == [
        "the model DenseNet-121 (not stated)", "pretrained weights (not stated)",
        "end-to-end training (not stated)", "resolution 128 px (not stated)",
        "learning rate 0.01 (not stated)", "30 epochs (not stated)",
        "predicted accuracy 72.7 % (not stated)", "training time 5 min (not stated)"]


def test_the_model_alone_or_with_a_wrong_value_is_not_the_pick_stated() -> None:
    named = ("Train DenseNet-121 (pretrained, end-to-end) at 128 px with learning rate 0.0001 for "
             "30 epochs: predicted accuracy 72.7 %, about 5 min.")
    assert unstated(named) == ["learning rate 0.01 (not stated)"]
    assert violations(named) == ["0.0001 (not the recommended config's value)"]
    assert unstated("DenseNet-121.")[0] != "the model DenseNet-121 (not stated)"
    # the family is not the model; the pick's values said of another model do not count
    assert "the model DenseNet-121 (not stated)" in unstated("A DenseNet, pretrained, end-to-end.")
    other = ("DenseNet-121 pretrained, end-to-end. A faster MobileNetV3-Small: 128 px, lr 0.01, "
             "30 epochs, 72.7 % in 5 min.")
    assert unstated(other) == [
        "resolution 128 px (not stated)", "learning rate 0.01 (not stated)",
        "30 epochs (not stated)", "predicted accuracy 72.7 % (not stated)",
        "training time 5 min (not stated)"]
    # pretrained vs from scratch: said the wrong way round
    assert unstated(named.replace("pretrained", "from scratch").replace("0.0001", "0.01")) == [
        "pretrained weights (not stated)"]


@pytest.mark.parametrize("answer", [
    REAL_ANSWER,  # what the real 1.5B model wrote
    "Recommended: DenseNet-121, pretrained, end-to-end, 128 px, AdamW, learning rate 0.01, weight "
    "decay 0.01, batch size 64, 30 epochs, strong augmentation.\nPredicted accuracy: 72.7 % (80 % "
    "interval 57.4-93.4 %), training time 5 min on t4 (rough estimate).",
    # other spellings, notations and roundings a small model uses
    "Fine-tune densenet121 (ImageNet weights) on 128×128 inputs with lr 1e-2 for 30 epochs; "
    "expect about 73 % accuracy in roughly 0.08 h.",
    "**DenseNet 121** - pre-trained, trained end to end\n- Resolution: 128\n- LR: 1 × 10^-2\n"
    "- Epochs: 30\n\nPredicted accuracy: 0.727, about 300 seconds.",
    "Use DENSENET-121, fully fine-tuned, with 128 px inputs, a learning rate of 0.01 and 30 "
    "epochs. It should reach 72.7% in ~5 minutes.",
])
def test_the_pick_stated_in_varied_phrasings_passes(answer: str) -> None:
    assert unstated(answer) == [] and violations(answer) == []
    # the words after a number say what it is, too ("a 0.01 learning rate", "128-pixel")
    assert unstated("DenseNet-121, pretrained, end-to-end, at a 128-pixel resolution, a 0.01 "
                    "learning rate and 30 epochs: 72.7 % in 5 min.") == []


def test_the_pick_of_other_schemes_and_without_a_predicted_time() -> None:
    probe = {**FASTER, "scheme": "linear_probing", "pretrained": True}
    answer = ("MobileNetV3-Small as a linear probe on frozen features, 224 px, lr 1e-4, 3 epochs: "
              "71.6 %.")
    assert unstated(answer, probe, 71.6, None) == []  # no predicted time: none asked for
    assert unstated(answer, probe, 71.6, 19.2) == ["training time 19 s (not stated)"]
    scratch = {**FASTER, "pretrained": False}
    assert unstated("mobilenetv3_small_100 from scratch, 224 px, lr 0.0001, 3 epochs, 71.6 % in "
                    "19 s.", scratch, 71.6, 19.2) == []  # from scratch: trained end to end
    assert unstated("MobileNetV3-Small, pretrained, end-to-end, 224 px, lr 0.0001, 3 epochs, "
                    "71.6 % in 19 s.", scratch, 71.6, 19.2) == ["training from scratch (not stated)"]


def test_a_list_items_number_is_not_a_quantity() -> None:
    from agent.grounding import find_numbers

    text = "**Warum:**\n1. **Trainingsschema → +4.5 Punkte**\n2) Eingabe 224 px\n - 3. drei\nnach 1. Mai"
    assert [n.text for n in find_numbers(text)] == ["4.5", "224", "1"]


def test_the_native_size_ratio_and_points_in_other_languages() -> None:
    source = '{"factors":[{"factor":"input resolution","value":"224 px (0.44 of native)","points":4.2}]}'
    for answer in ("Warum: die Eingabegröße 224 px (0.44 der nativen) → +4.2 Punkte",
                   "résolution d'entrée 224 px (0.44 de la taille native) → +4.2 points",
                   "resolución de entrada 224 px (0.44 del nativo) → +4.2 puntos"):
        assert number_violations(answer, [source]) == [], answer
