"""Trait extraction (regex fallback, LLM merge, retries), grounding, and the scripted model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage

from agent.extraction import TurnExtraction, extract_turn, invoke_structured, regex_extract
from agent.grounding import find_numbers, ungrounded_numbers
from agent.testing import ScriptedChatModel, ScriptExhausted
from knowledge.errors import ConfigError


@pytest.mark.parametrize(("text", "pending", "expected"), [
    ("about 3,000 chest X-rays in 3 classes", None,
     {"n_instances": 3000, "n_classes": 3, "modality": "x-ray"}),
    ("roughly 2k dermoscopy images, five classes, 512 px RGB", None,
     {"n_instances": 2000, "n_classes": 5, "modality": "dermoscopy", "height": 512, "channels": 3}),
    ("Actually it's 5 classes", None, {"n_classes": 5}),
    ("binary task on 640x480 grayscale CT scans", None,
     {"n_classes": 2, "width": 640, "height": 480, "channels": 1, "modality": "ct"}),
    ("12", "n_classes", {"n_classes": 12}),
    ("about 1,500", "n_instances", {"n_instances": 1500}),
    ("ultrasound", "modality", {"modality": "ultrasound"}),
    ("let us talk", None, {}),
])
def test_regex_extract_traits(text: str, pending: str | None, expected: dict) -> None:
    assert regex_extract(text, pending).traits() == expected


def test_regex_extract_constraints_and_paths() -> None:
    found = regex_extract("Data in ./data/skin.npz, 800 images. I only have a CPU. Make it faster")
    assert found.dataset_path == "./data/skin.npz" and found.preference == "speed"
    assert found.budget == "I only have a CPU"
    assert regex_extract("one hour on a T4, 224 px images").budget == "one hour on a T4"
    assert regex_extract("3 classes, whenever").budget is None


def test_llm_values_must_be_stated_in_the_message() -> None:
    model = ScriptedChatModel(script=[{"json": {"n_instances": 9999, "n_classes": 3,
                                                "modality": "CT scan", "dataset_path": "/etc"}}])
    found = extract_turn(model, "three classes of CT scans, about 1,200 images")
    assert found.n_instances == 1200  # the invented 9999 is dropped; the regex value stays
    assert found.n_classes == 3 and found.modality == "ct" and found.dataset_path is None


def test_an_invented_budget_is_dropped_and_the_users_words_win() -> None:
    # seen with the real 1.5B model: it copied the prompt's example budget into a turn naming none
    invented = ScriptedChatModel(script=[{"json": {"n_classes": 3, "budget": "one hour on a T4"}}])
    assert extract_turn(invented, "I have 3 classes of chest x-rays").budget is None
    merged = ScriptedChatModel(script=[{"json": {"budget": "30 minutes on a T4"}}])
    found = extract_turn(merged, "I only have a CPU, about 30 minutes.")
    assert found.budget is not None and "t4" not in found.budget.lower() and "cpu" in found.budget.lower()


def test_structured_output_retries_with_the_error_fed_back() -> None:
    model = ScriptedChatModel(script=["no idea", {"json": {"n_classes": 1}}, {"json": {"n_classes": 4}}])
    result = invoke_structured(model, TurnExtraction, [HumanMessage("4 classes")], retries=2)
    assert result.n_classes == 4 and len(model.calls) == 3
    assert "n_classes" in model.calls[2][-1].content and "invalid" in model.calls[2][-1].content
    failing = ScriptedChatModel(script=["x", "y"])
    with pytest.raises(ValueError):
        invoke_structured(failing, TurnExtraction, [HumanMessage("hi")], retries=1)


def test_grounding_accepts_formatting_variants_only() -> None:
    sources = ['{"acc":0.724,"lr":0.0001,"wd":1e-2,"n":3000,"time":"16 min"}']
    ok = "ResNet-18 / ViT-B/16 / efficientnet_b4: 72.4 % (72 %), lr 1e-4, wd 0.01, 3,000 images, 16 min"
    assert ungrounded_numbers(ok, sources) == []
    assert ungrounded_numbers("it reaches 97.3 % with 72.45 %", sources) == ["97.3", "72.45"]
    assert [n.value for n in find_numbers("2k images, 3e-04")] == pytest.approx([2000, 0.0003])


def test_scripted_model_from_files(tmp_path: Path) -> None:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(["hello", {"content": "", "tool_calls": [
        {"name": "similar_runs", "args": {"k": 2}}]}, {"json": {"n_classes": 3}}]))
    model = ScriptedChatModel.from_file(path)
    assert model.invoke("hi").content == "hello"
    call = model.bind_tools([]).invoke("x").tool_calls[0]
    assert call["name"] == "similar_runs" and call["args"] == {"k": 2}
    assert model.with_structured_output(TurnExtraction).invoke("y").n_classes == 3
    assert [m[0].content for m in model.calls] == ["hi", "x", "y"]
    with pytest.raises(ScriptExhausted):
        model.invoke("more")
    yaml_path = tmp_path / "s.yaml"
    yaml_path.write_text("replies:\n  - first\n  - content: second\n")
    assert [ScriptedChatModel.from_file(yaml_path).invoke("q").content] == ["first"]
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ConfigError, match="bad.json is not valid JSON"):
        ScriptedChatModel.from_file(tmp_path / "bad.json")
    with pytest.raises(ConfigError, match="cannot read the LLM script"):
        ScriptedChatModel.from_file(tmp_path / "missing.json")
    assert isinstance(ScriptedChatModel(script=lambda m: AIMessage("dyn")).invoke("z"), AIMessage)


def test_budgets_name_devices_from_the_catalogue_and_unknown_ones_are_flagged() -> None:
    from agent.extraction import budget_phrase, device_question, unknown_device

    assert budget_phrase("3,000 images in 3 classes; one RTX 4090 for 2 hours") == (
        "one RTX 4090 for 2 hours")
    assert budget_phrase("we have 8xA100, 1 hour") == "we have 8xA100, 1 hour"
    assert budget_phrase("I train on Colab") == "I train on Colab"
    assert unknown_device("one hour on a T4") is None
    text = "about 3,000 chest X-rays in 3 classes, 2 hours on my Quadro K2200"
    assert budget_phrase(text) is None  # never read as a CPU budget
    error = unknown_device(text)
    assert error is not None and error.named == "quadro k2200"
    assert error.clause == "2 hours on my Quadro K2200"
    question = device_question(error)
    assert question.startswith("Which GPU is that?") and "quadro k2200" in question
    assert "RTX 2060" in question and "?" in question
    tpu = device_question(unknown_device("I will use a TPU v4"))
    assert "cannot plan for 'tpu v4'" in tpu and "not on TPUs" in tpu


def test_trait_schemas_are_derived_from_metafeatures():
    """The tools' Traits, TurnExtraction and the extraction prompt's modality list all come from
    `knowledge.metafeatures.MetaFeatures`: a trait added there appears in each, with its bounds."""
    import re
    from typing import Literal

    from pydantic import Field, ValidationError

    from agent import prompts
    from agent.extraction import NOT_EXTRACTED, make_turn_extraction
    from knowledge.metafeatures import MODALITIES, MetaFeatures
    from tools.schemas import Traits, make_traits

    for name, info in MetaFeatures.model_fields.items():
        assert name in Traits.model_fields
        assert (name in TurnExtraction.model_fields) != (name in NOT_EXTRACTED)
        for schema in (Traits, TurnExtraction):
            if name in schema.model_fields:
                assert schema.model_fields[name].metadata == info.metadata  # ge/le bounds
    listed = re.search(r"modality \(([^)]*)\)", prompts.EXTRACT_SYSTEM).group(1)
    assert tuple(listed.split(", ")) == MODALITIES
    for schema in (Traits, TurnExtraction):
        assert ", ".join(MODALITIES) in schema.model_fields["modality"].description

    class Extended(MetaFeatures):  # a new trait, and a new modality word
        n_patients: int | None = Field(None, ge=1, description="number of patients")
        modality: Literal[(*MODALITIES, "pet")] | None = None

    for schema in (make_traits(Extended), make_turn_extraction(Extended)):
        field = schema.model_fields["n_patients"]
        assert field.description == "number of patients" and field.default is None
        assert "pet" in schema.model_fields["modality"].description
        assert schema.model_validate({"n_patients": 40}).n_patients == 40
        assert "n_patients" in schema.model_json_schema()["properties"]
        for bad in (True, 0, "many"):  # booleans refused, bounds kept
            with pytest.raises(ValidationError):
                schema.model_validate({"n_patients": bad})
    assert make_turn_extraction(Extended)(n_patients=40, budget="1 h").traits() == {"n_patients": 40}


def test_a_dataset_path_is_never_read_as_a_device() -> None:
    """Upload folders are random hex: `.../b40e9c86/tiny.npz` once made the advisor ask which GPU
    'b40e9c86' is instead of measuring the upload."""
    from agent.extraction import budget_phrase, unknown_device

    for folder in ("b40e9c86", "a100f00d", "h100beef", "t4a0c9e1", "m3e77f12"):
        msg = f"I uploaded my dataset: /tmp/ui/uploads/3f47486a74bb4591/{folder}/tiny.npz"
        assert unknown_device(msg) is None and budget_phrase(msg) is None, folder
        assert regex_extract(msg).dataset_path.endswith(f"{folder}/tiny.npz")
    assert budget_phrase("my data is at ./a100/scans.npz, one hour on a T4") == "one hour on a T4"
