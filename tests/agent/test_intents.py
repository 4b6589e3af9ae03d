"""agent.intents: the follow-up kinds the graph answers itself, plan edits, out-of-scope asks."""

from __future__ import annotations

import pytest

from agent.intents import out_of_scope, plan_edits, read_intent, scope_reply


@pytest.mark.parametrize("text, kind", [
    ("Why that model and not a ViT?", "why_not"),
    ("why not ConvNeXt?", "why_not"),
    ("What about ResNet-18 instead?", "why_not"),
    ("What learning rate would you use if I fine-tune a pretrained ResNet-50 instead?",
     "hyperparameter"),
    ("what batch size for EfficientNet-B0?", "hyperparameter"),
    ("How many epochs should that run?", "hyperparameter"),
    ("How long will that take on a T4 instead?", "device_time"),
    ("And how much time on an RTX 4090?", "device_time"),
    ("Give me the exact command to train that.", "command"),
    ("How do I run it myself?", "command"),
    ("Why did you pick that one?", "why_pick"),
    ("It's 3-D liver CT and I need segmentation. Can you do it?", "out_of_scope"),
    ("Thanks, sounds good!", "other"),
    ("What if I only have a CPU?", "other"),
])
def test_kinds(text: str, kind: str) -> None:
    assert read_intent(text, "densenet121").kind == kind


def test_named_models_and_parameters() -> None:
    intent = read_intent("What learning rate would you use if I fine-tune a pretrained ResNet-50?")
    assert intent.models == ["resnet50"] and intent.params == ["lr"] and intent.pretrained is True
    intent = read_intent("Why not a ViT?", "densenet121")
    assert intent.models == ["vit_tiny_patch16_224"]
    assert read_intent("why not ConvNeXt?").unknown_models == ["ConvNeXt"]
    assert read_intent("How long on a T4 instead?").device == "a T4"


@pytest.mark.parametrize("text, task", [
    ("It's segmentation, not classification.", "segmentation"),
    ("I want to draw bounding boxes around each cell", "object detection"),
    ("500 3-D liver CT volumes", "3-D volumes"),
    ("classify radiology reports into 4 categories", "text"),
    ("predict the patient's age from the X-ray (regression)", "regression"),
    ("je voudrais détecter les nodules avec des boîtes englobantes sur 800 scanners", "object detection"),
    ("Quiero detectar células con cajas delimitadoras", "object detection"),
    ("200 brain MRI volumes as 3-D NIfTI files", "3-D volumes"),
])
def test_out_of_scope(text: str, task: str) -> None:
    assert out_of_scope(text) == task
    assert "classification" in scope_reply(task)


@pytest.mark.parametrize("text", [
    "I need pneumonia detection from chest x-rays, 3 classes",
    "It is not segmentation, just classification of 2,000 slides",
    "3,000 chest X-rays, 3 classes, 224 px grayscale.",
    "Why not a ViT?",
    "I want a pneumonia detector from 3,000 x-rays",  # a detector of a label is a classifier
    "OK, 2-D axial slices instead: about 12,000 slices, 2 classes",
])
def test_in_scope(text: str) -> None:
    assert out_of_scope(text) is None


@pytest.mark.parametrize("text, edits", [
    ("Train it from scratch instead then", {"pretrained": False}),
    ("use 64 px", {"resolution": 64}),
    ("Launch the faster alternative instead: ResNet-18 from scratch, 64 px, 3 epochs",
     {"model": "resnet18", "pretrained": False, "resolution": 64, "epochs": 3}),
    ("Let's go with a linear probe", {"scheme": "linear_probing"}),
    ("What learning rate would you use for ResNet-50?", {}),  # a what-if, not an edit
    ("Why not a ViT?", {}),
])
def test_plan_edits(text: str, edits: dict) -> None:
    assert plan_edits(text) == edits
