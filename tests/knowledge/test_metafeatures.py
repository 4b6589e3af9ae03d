"""knowledge.metafeatures: from_class_counts / from_traits / from_labels edge cases."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from pydantic import ValidationError

from knowledge.metafeatures import (
    MAX_INSTANCES,
    MAX_SIDE,
    MODALITIES,
    NUMERIC_FEATURES,
    MetaFeatures,
    from_class_counts,
    from_labels,
    from_traits,
    normalize_modality,
)


def test_from_class_counts_balanced() -> None:
    mf = from_class_counts([50, 50, 50, 50])
    assert (mf.n_instances, mf.n_classes, mf.imbalance_ratio) == (200, 4, 1.0)
    assert mf.class_entropy == pytest.approx(2.0)
    assert (mf.class_size_std, mf.class_size_min, mf.class_size_max) == (0.0, 50.0, 50.0)
    assert mf.task == "multi-class"


def test_from_class_counts_ignores_empty_classes_and_sets_binary() -> None:
    mf = from_class_counts(np.array([0, 1214, 3494, 0]))
    assert (mf.n_classes, mf.task, mf.n_instances) == (2, "binary", 4708)
    assert mf.imbalance_ratio == pytest.approx(2.8781, abs=1e-4)
    assert mf.class_entropy == pytest.approx(0.8235, abs=1e-4)


@pytest.mark.parametrize("counts", [[10], [0, 7], [], [0, 0]])
def test_from_class_counts_needs_two_classes(counts: list[int]) -> None:
    with pytest.raises(ValueError, match="at least 2 classes"):
        from_class_counts(counts)


def test_from_class_counts_extreme_imbalance_and_task_override() -> None:
    mf = from_class_counts([1, 1000], modality="Chest X-Ray", task="ordinal-regression")
    assert mf.imbalance_ratio == 1000.0 and mf.modality == "x-ray" and mf.task == "ordinal-regression"
    assert 0 < mf.class_entropy < 0.02


def test_from_traits_nothing_known() -> None:
    mf = from_traits()
    assert mf.missing() == list(MetaFeatures.model_fields)
    assert all(math.isnan(v) for v in mf.numeric().values())
    assert list(mf.numeric()) == list(NUMERIC_FEATURES)


def test_from_traits_square_image_from_one_side() -> None:
    assert (from_traits(width=512).height, from_traits(width=512).width) == (512, 512)
    assert (from_traits(height=64).height, from_traits(height=64).width) == (64, 64)
    mf = from_traits(height=32, width=48)
    assert (mf.height, mf.width) == (32, 48)


def test_from_traits_class_counts_equal_from_class_counts() -> None:
    a = from_traits(class_counts=[10, 30, 60], height=28, channels=1, modality="ct")
    b = from_class_counts([10, 30, 60], height=28, channels=1, modality="ct")
    assert a == b and a.width is None  # class_counts path passes sizes through unchanged


def test_from_traits_two_level_split_from_ratio() -> None:
    mf = from_traits(n_instances=3000, n_classes=3, imbalance_ratio=4.0)
    small = 3000 / (4 + 3 - 1)
    assert mf.class_size_max == pytest.approx(4 * small) and mf.class_size_min == pytest.approx(small)
    assert mf.class_size_max / mf.class_size_min == pytest.approx(4.0)
    p = np.array([4 * small, small, small]) / 3000
    assert mf.class_entropy == pytest.approx(-(p * np.log2(p)).sum(), abs=1e-4)
    assert mf.class_size_mean == 1000.0 and mf.task == "multi-class"


def test_from_traits_ratio_one_is_balanced() -> None:
    mf = from_traits(n_instances=100, n_classes=4, imbalance_ratio=1.0)
    assert mf.class_entropy == pytest.approx(2.0) and mf.class_size_std == 0.0


def test_from_traits_partial_knowledge() -> None:
    mf = from_traits(n_instances=500, n_classes=2)
    assert mf.class_size_mean == 250.0 and mf.task == "binary"
    assert mf.class_entropy is None and mf.imbalance_ratio is None
    only_ratio = from_traits(imbalance_ratio=3.0)
    assert only_ratio.imbalance_ratio == 3.0 and only_ratio.class_size_mean is None
    assert only_ratio.task is None


def test_from_traits_rejects_impossible_values() -> None:
    with pytest.raises(ValidationError):
        from_traits(n_classes=1)
    with pytest.raises(ValidationError):
        from_traits(imbalance_ratio=0.5)
    with pytest.raises(ValidationError):
        from_traits(channels=5)
    with pytest.raises(ValidationError, match="unknown modality"):
        from_traits(modality="sonar")


def test_normalize_modality_spellings() -> None:
    assert normalize_modality("X-Ray") == "x-ray"
    assert normalize_modality("x_ray") == "x-ray"
    assert normalize_modality("CT scan") == "ct"
    assert normalize_modality("  Histology ") == "histopathology"
    assert normalize_modality(None) is None
    assert all(normalize_modality(m) == m for m in MODALITIES)
    with pytest.raises(ValueError, match="choose one of x-ray"):
        normalize_modality("hologram")


def test_from_labels_single_and_multilabel() -> None:
    single = from_labels(np.array([[0], [1], [1], [2]]))
    assert (single.n_instances, single.n_classes, single.imbalance_ratio) == (4, 3, 2.0)
    multi = from_labels(np.array([[1, 0, 1], [1, 1, 0], [0, 0, 1], [1, 0, 0]]))
    assert multi.task == "multi-label" and multi.n_instances == 4 and multi.n_classes == 3
    assert multi.imbalance_ratio == 3.0  # positives per label: 3, 1, 2


# --- the impossible is rejected, naming the field and the value (issue 13 item 9) ------------------

@pytest.mark.parametrize(("traits", "message"), [
    ({"n_instances": 10**9}, r"n_instances: 1,000,000,000 training images is beyond the hard limit "
                             r"of 100,000,000"),
    ({"height": 100_000}, r"height: 100,000 px is beyond the hard limit of 65,535 px"),
    ({"width": 70_000}, r"width: 70,000 px is beyond the hard limit of 65,535 px"),
    ({"n_instances": True}, r"n_instances: True is a boolean, not a number"),
    ({"n_classes": False}, r"n_classes: False is a boolean, not a number"),
    ({"imbalance_ratio": True}, r"imbalance_ratio: True is a boolean"),
    ({"height": np.bool_(True)}, r"height: .*True.* is a boolean"),
    ({"n_instances": 0}, r"n_instances: .*greater than or equal to 1"),
    ({"n_instances": -5}, r"n_instances: .*greater than or equal to 1"),
    ({"height": -1}, r"height: .*greater than or equal to 1"),
    ({"n_classes": 1}, r"n_classes: .*greater than or equal to 2"),
    ({"n_instances": math.nan}, r"n_instances: .*finite number"),
    ({"imbalance_ratio": math.nan}, r"imbalance_ratio: .*finite number"),
    ({"imbalance_ratio": math.inf}, r"imbalance_ratio: .*finite number"),
    ({"class_entropy": -math.inf}, r"class_entropy: .*finite number"),
    ({"channels": 5}, r"channels: .*less than or equal to 4"),
    ({"n_instances": 3, "n_classes": 1000}, r"n_classes 1,000 exceeds n_instances 3"),
    ({"n_instances": 100, "n_classes": 4, "class_size_min": 30}, r"class_size_min 30 exceeds "
                                                                 r"n_instances / n_classes = 25"),
    ({"n_instances": 100, "class_size_max": 101}, r"class_size_max 101 exceeds n_instances 100"),
    ({"class_size_min": 10, "class_size_max": 5}, r"class_size_min 10 exceeds class_size_max 5"),
    ({"class_size_min": 10, "class_size_mean": 5}, r"class_size_mean 5 is below class_size_min 10"),
    ({"n_instances": 100, "imbalance_ratio": 500}, r"imbalance_ratio 500 exceeds n_instances 100"),
    ({"n_classes": 2, "class_entropy": 1.5}, r"class_entropy 1.5 bits exceeds log2\(n_classes\) = 1"),
])
def test_impossible_traits_are_rejected_naming_field_and_value(traits, message) -> None:
    from knowledge.metafeatures import validation_message

    with pytest.raises(ValidationError) as info:
        MetaFeatures.model_validate(traits)
    text = validation_message(info.value)
    assert re.search(message, text), text
    assert "\n" not in text and len(text) < 250


def test_the_hard_limits_themselves_are_accepted() -> None:
    mf = MetaFeatures(n_instances=MAX_INSTANCES, n_classes=2, height=MAX_SIDE, width=MAX_SIDE,
                      channels=4)
    assert (mf.n_instances, mf.height) == (100_000_000, 65_535)
    # unusual but possible: accepted here (the recommendation notes that it is outside the
    # meta-dataset's range)
    assert from_traits(n_instances=5_000_000, n_classes=500, height=4000).class_size_mean == 10_000
    assert from_traits(n_instances=3, n_classes=3).class_size_mean == 1.0  # one image per class


def test_multi_label_counts_positives_so_classes_may_outnumber_images() -> None:
    mf = MetaFeatures(n_instances=4, n_classes=10, class_size_min=1, class_size_max=4,
                      task="multi-label")
    assert mf.n_classes == 10
    with pytest.raises(ValidationError, match="class_size_max 5 exceeds n_instances 4"):
        MetaFeatures(n_instances=4, n_classes=10, class_size_max=5, task="multi-label")


def test_derived_traits_never_trip_the_consistency_checks() -> None:
    # rounding of the derived class sizes (4 decimals) stays within the checks' slack
    for n, k, r in [(7, 3, 1.0), (1001, 7, 1.0), (10, 3, 1.0001), (99_999_999, 13, 3.3),
                    (100_000_000, 2, 99_999_999.0), (5, 5, 1.0)]:
        assert from_traits(n_instances=n, n_classes=k, imbalance_ratio=r).n_classes == k
    assert from_class_counts([1, 1, 99_999_998]).imbalance_ratio == 99_999_998


def test_class_counts_must_be_finite_and_not_negative() -> None:
    with pytest.raises(ValueError, match="finite and not negative"):
        from_class_counts([10, -3, 5])
    with pytest.raises(ValueError, match="finite and not negative"):
        from_class_counts([10, math.nan, 5])


def test_messages_never_carry_a_huge_input() -> None:
    from knowledge.metafeatures import short_repr, validation_message

    with pytest.raises(ValueError) as info:
        normalize_modality("x" * 10_000_000)
    assert "10,000,000 characters" in str(info.value) and len(str(info.value)) < 300
    with pytest.raises(ValidationError) as too_big:
        MetaFeatures(n_instances=10**400)
    assert validation_message(too_big.value) == ("n_instances: about 10^400 training images is "
                                                 "beyond the hard limit of 100,000,000 training "
                                                 "images")
    with pytest.raises(ValidationError) as digits:
        MetaFeatures.model_validate({"n_instances": "9" * 10_000_000})
    assert len(validation_message(digits.value)) < 300
    assert short_repr(list(range(1000))) == "a list of 1,000 items"
    assert short_repr(10**5000).startswith("about 10^")  # repr() itself would raise
