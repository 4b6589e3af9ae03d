"""What the web app's user sees (issue 16 item 7): traits named in words, the raw keys only in a
collapsed block for developers, and example questions under the chat box."""

from __future__ import annotations

import pytest

from knowledge.recommend import TRAIT_KEYS
from ui.tables import (
    TRAIT_LABELS,
    trait_key,
    trait_keys_markdown,
    trait_label,
    trait_rows,
    traits_from_rows,
)


def test_every_trait_has_its_own_label_in_words() -> None:
    assert set(TRAIT_LABELS) == set(TRAIT_KEYS)
    labels = list(TRAIT_LABELS.values())
    assert len(set(labels)) == len(labels)  # one label, one trait: the table reads back unambiguously
    for key, label in TRAIT_LABELS.items():
        assert "_" not in label and (key not in label or "_" not in key), (key, label)
    assert trait_label("class_size_min") == "smallest class (images)"
    assert trait_label("class_size_max") == "largest class (images)"
    assert trait_label("n_instances").startswith("images")
    assert trait_label("no_such_key") == "no_such_key"


def test_the_traits_table_shows_words_not_raw_keys() -> None:
    rows = trait_rows({"n_instances": 3000, "class_size_std": 12.5,
                       "modality": {"value": "x-ray", "source": "stated"}})
    names = list(rows["trait"])
    assert len(names) == len(TRAIT_KEYS)
    assert not set(names) & set(TRAIT_KEYS)  # no raw key such as class_size_std
    assert "class_size_std" not in names and "class_size_min" not in names
    shown = rows.set_index("trait")
    assert shown.loc["images (training set)", "value"] == "3000"
    assert shown.loc["images per class (spread)", "value"] == "12.5"
    assert shown.loc["modality (x-ray, CT, ...)", "source"] == "stated"
    assert names[:4] == ["images (training set)", "classes", "largest class (images)",
                         "smallest class (images)"]


@pytest.mark.parametrize("traits", [
    {"n_instances": 3000, "n_classes": 3, "modality": "x-ray"},
    {"n_instances": 10015, "n_classes": 7, "class_size_max": 6705, "class_size_min": 115,
     "height": 224, "channels": 3, "imbalance_ratio": 58.3, "task": "multi-class"},
])
def test_the_labelled_table_reads_back_as_trait_keys(traits: dict) -> None:
    assert traits_from_rows(trait_rows(traits)) == traits


def test_raw_keys_are_still_accepted_and_listed_for_developers() -> None:
    rows = [["n_instances", "3000", ""], ["classes", "3", ""], ["modality", "x-ray", ""]]
    assert traits_from_rows(rows) == {"n_instances": 3000, "n_classes": 3, "modality": "x-ray"}
    assert trait_key(" smallest class (images) ") == "class_size_min"
    keys = trait_keys_markdown()
    for key, label in TRAIT_LABELS.items():
        assert f"| {label} | `{key}` |" in keys


def test_the_layout_offers_example_questions_and_hides_the_raw_keys(store_path, tmp_path) -> None:
    import gradio as gr

    from tests.ui.helpers import make_app
    from ui.layout import EXAMPLE_QUESTIONS, build_app

    app = make_app(tmp_path, store_path, [])
    demo = build_app(app=app)
    blocks = list(demo.blocks.values())
    box = next(b for b in blocks if isinstance(b, gr.Textbox) and "Describe your dataset" in
               (b.placeholder or ""))
    examples = [b for b in blocks if isinstance(b, gr.Dataset)]  # what gr.Examples renders
    assert len(examples) == 1 and examples[0].elem_id == "examples"
    assert [row[0] for row in examples[0].samples] == list(EXAMPLE_QUESTIONS)
    assert 2 <= len(EXAMPLE_QUESTIONS) <= 3 and any("T4" in q for q in EXAMPLE_QUESTIONS)
    assert box.placeholder and examples[0].label == "Example questions"
    accordion = next(b for b in blocks if isinstance(b, gr.Accordion))
    assert accordion.elem_id == "trait-keys" and accordion.open is False
    inside = [b for b in blocks if isinstance(b, gr.Markdown) and "`class_size_std`" in (b.value or "")]
    assert len(inside) == 1  # the raw keys: in the collapsed block only
    traits = next(b for b in blocks if isinstance(b, gr.Dataframe) and b.elem_id == "traits")
    assert "class_size_std" not in str(traits.value) and "images (training set)" in str(traits.value)
    app.close()
