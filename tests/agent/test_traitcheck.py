"""Issue 16 item 1, "Facts right, or asked": merge_traits records vague amounts and ranges, keeps
measured traits unless corrected, and asks ONE question when the traits disagree."""

from __future__ import annotations

from agent.extraction import regex_extract
from agent.nodes.runtime import missing_traits
from agent.traitcheck import TraitUpdate, merge_traits

MEASURED = {"n_instances": {"value": 90, "source": "measured"},
            "n_classes": {"value": 3, "source": "measured"},
            "height": {"value": 32, "source": "measured"},
            "width": {"value": 32, "source": "measured"},
            "modality": {"value": "dermoscopy", "source": "stated"}}


def turn(known: dict, text: str, pending: str | None = None, edits: dict | None = None,
         found: dict | None = None) -> TraitUpdate:
    """One message: the regexes' traits (or `found`, an LLM's) merged into `known`."""
    found = regex_extract(text, pending).traits() if found is None else found
    return merge_traits(known, found, text, edits=edits)


def values(update: TraitUpdate) -> dict:
    return {k: t["value"] for k, t in update.traits.items()}


def test_a_vague_amount_is_recorded_with_its_range_and_not_asked_again() -> None:
    update = turn({"modality": {"value": "x-ray", "source": "stated"}}, "a few thousand",
                  pending="n_instances")
    assert update.traits["n_instances"] == {"value": 3000, "source": "vague", "range": [2000, 5000]}
    assert update.question is None
    assert missing_traits(values(update)) == ["n_classes"]  # the count question is not asked again
    update = turn(update.traits, "normal vs pneumonia vs covid", pending="n_classes")
    assert update.traits["n_classes"] == {"value": 3, "source": "stated"}
    assert missing_traits(values(update)) == []


def test_a_range_keeps_its_range_and_a_vague_answer_keeps_a_precise_value() -> None:
    update = turn({}, "2,000-3,000 images")
    assert update.traits["n_instances"] == {"value": 2500, "source": "stated", "range": [2000, 3000]}
    precise = {"n_instances": {"value": 3400, "source": "stated"}}
    assert turn(precise, "yes, a few thousand").traits["n_instances"]["value"] == 3400
    assert turn(precise, "a few hundred", pending="n_instances").traits["n_instances"] == {
        "value": 300, "source": "vague", "range": [200, 500]}


def test_a_total_the_class_sizes_contradict_is_asked_not_overwritten() -> None:
    text = "about 10,000 chest x-rays: 3,000 normal, 1,500 benign and 200 malignant"
    update = turn({}, text)
    assert update.question == ("You said about 10,000 images, but the class sizes you listed "
                               "(3,000, 1,500 and 200) do not add up to that: which is right, the "
                               "total or the class sizes?")
    assert update.pending == "n_instances"
    assert values(update)["n_instances"] == 10000  # as stated, until answered
    # the answer resolves it: the total ...
    total = turn(update.traits, "10,000", pending="n_instances")
    assert total.question is None and "class_counts" not in total.traits
    assert values(total)["n_instances"] == 10000 and values(total)["imbalance_ratio"] == 15.0
    assert "asked" not in total.traits["n_instances"]
    # ... or the class sizes
    sizes = turn(update.traits, "the class sizes are right", pending="n_instances")
    assert sizes.question is None and values(sizes)["n_instances"] == 4700
    assert values(sizes)["class_counts"] == [3000, 1500, 200]
    assert turn(update.traits, "4,700", pending="n_instances").traits["class_counts"]
    # ... and an unanswered question is not asked twice
    other = turn(update.traits, "why not a ViT?")
    assert other.question is None and values(other)["n_instances"] == 10000
    assert "class_counts" not in other.traits and other.dropped


def test_the_1_5b_dermoscopy_failure_total_is_not_overwritten_by_class_counts() -> None:
    # the 1.5B model's class counts [115 x 7] no longer get through merge; if class counts that do
    # not add up reach merge_traits, the stated total is kept and the user is asked
    found = {"n_instances": 10000, "n_classes": 7, "class_counts": [6705, 115]}
    update = turn({}, "about 10,000 images, 7 classes", found=found)
    assert update.question is not None and "10,000" in update.question
    # no derived number (a sum is not a fact the user or a tool gave): the sizes themselves
    assert "6,705 and 115" in update.question and values(update)["n_instances"] == 10000


def test_classes_and_imbalance_that_contradict_the_class_sizes_are_asked() -> None:
    update = turn({}, "5 classes: 3,000 normal, 1,500 benign and 200 malignant")
    assert update.pending == "n_classes" and update.question == (
        "You said 5 classes, but you listed 3 class sizes (3,000, 1,500 and 200): how many "
        "classes are there?")
    assert values(turn(update.traits, "3", pending="n_classes"))["class_counts"] == [3000, 1500, 200]
    five = turn(update.traits, "5", pending="n_classes")
    assert values(five)["n_classes"] == 5 and "class_counts" not in five.traits
    update = turn({}, "3,000 normal, 1,500 benign and 200 malignant; the largest class is 20 "
                      "times the smallest")
    assert update.pending == "imbalance_ratio" and "20" in update.question and "3,000" in update.question


def test_an_earlier_total_is_checked_against_new_class_sizes() -> None:
    known = {"n_instances": {"value": 10000, "source": "stated"}}
    update = turn(known, "class sizes: 3000, 1500, 200")
    assert update.pending == "n_instances" and "10,000" in update.question
    assert values(update)["n_instances"] == 10000
    # an explicit correction of the total needs no question
    counted = turn({}, "500 normal, 700 pneumonia and 800 covid")
    assert values(counted) == {"class_counts": [500, 700, 800], "n_instances": 2000,
                               "n_classes": 3, "imbalance_ratio": 1.6}
    fixed = turn(counted.traits, "actually it's 2,500 images")
    assert fixed.question is None and values(fixed)["n_instances"] == 2500
    assert "class_counts" not in fixed.traits
    asked = turn(counted.traits, "I have 2,500 images")
    assert asked.pending == "n_instances"


def test_consistent_class_sizes_fill_the_total_and_classes() -> None:
    update = turn({}, "2,000 chest x-rays: 500 normal, 700 pneumonia and 800 covid.")
    assert update.question is None
    assert values(update) == {"n_instances": 2000, "class_counts": [500, 700, 800],
                              "modality": "x-ray", "n_classes": 3, "imbalance_ratio": 1.6}
    assert turn(update.traits, "As I said, 2,000.").question is None


def test_measured_traits_change_only_when_corrected_explicitly() -> None:
    launch = "Launch the faster alternative instead: ResNet-18 from scratch, 64 px, 3 epochs"
    # the 1.5B model's reading of it: image height 64, image width 3
    update = turn(MEASURED, launch, found={"height": 64, "width": 3})
    assert update.traits == MEASURED and update.dropped
    with_edit = turn(MEASURED, launch, edits={"resolution": 64})
    assert with_edit.traits == MEASURED
    assert values(turn(MEASURED, "actually the images are 512 px"))["height"] == 512
    corrected = turn(MEASURED, "actually the images are 512 px")
    assert "width" not in corrected.traits  # the measured width went with the old size
    assert values(turn(MEASURED, "no, there are 5 classes"))["n_classes"] == 5
    assert values(turn(MEASURED, "there are 5 classes"))["n_classes"] == 3
    assert values(turn(MEASURED, "about 3,000 images"))["n_instances"] == 90


def test_stated_traits_are_still_corrected_by_a_later_statement() -> None:
    known = {"n_classes": {"value": 4, "source": "stated"}}
    assert values(turn(known, "Actually it's 5 classes, I forgot the 'doubtful' grade."))[
        "n_classes"] == 5
    assert values(turn({"height": {"value": 224, "source": "assumed"}},
                       "Oh, they are small: 28x28 grayscale.")) == {
        "height": 28, "width": 28, "channels": 1}


def test_a_trait_restated_as_measured_keeps_its_provenance() -> None:
    from agent.traitcheck import merge_traits

    known = {"modality": {"value": "x-ray", "source": "measured"},
             "height": {"value": 32, "source": "measured"}}
    update = merge_traits(known, {"modality": "x-ray"}, "Launch ResNet-18 on the x-rays")
    assert update.traits["modality"] == {"value": "x-ray", "source": "measured"}
