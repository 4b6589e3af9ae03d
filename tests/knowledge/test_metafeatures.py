"""knowledge.metafeatures: from_class_counts / from_traits / from_labels edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from knowledge.metafeatures import (
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
