"""The paper's dataset meta-features, measured from labels or built from traits a user states.

Seven core features (`n_instances`, `n_classes`, `imbalance_ratio`, `class_entropy`, `height`,
`width`, `channels`), the class-size statistics, the imaging `modality` and the task type. Any of them
may be missing (`None`): a user may not know the class balance, and the meta-learner accepts gaps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

Modality = Literal[
    "x-ray",
    "ct",
    "mri",
    "ultrasound",
    "dermoscopy",
    "fundus",
    "oct",
    "histopathology",
    "microscopy",
    "natural",
    "other",
]
MODALITIES: tuple[str, ...] = get_args(Modality)
TaskType = Literal["binary", "multi-class", "multi-label", "ordinal-regression"]
TASK_TYPES: tuple[str, ...] = get_args(TaskType)

# Spellings users and dataset cards use for each modality.
MODALITY_ALIASES: dict[str, str] = {
    "xray": "x-ray",
    "x ray": "x-ray",
    "radiograph": "x-ray",
    "chest x-ray": "x-ray",
    "cxr": "x-ray",
    "computed tomography": "ct",
    "ct scan": "ct",
    "magnetic resonance": "mri",
    "mr": "mri",
    "us": "ultrasound",
    "sonography": "ultrasound",
    "dermatoscope": "dermoscopy",
    "dermatoscopy": "dermoscopy",
    "skin": "dermoscopy",
    "retina": "fundus",
    "fundus camera": "fundus",
    "retinal oct": "oct",
    "optical coherence tomography": "oct",
    "pathology": "histopathology",
    "histology": "histopathology",
    "microscope": "microscopy",
    "cell": "microscopy",
    "photo": "natural",
    "photograph": "natural",
    "rgb": "natural",
}

NUMERIC_FEATURES: tuple[str, ...] = (
    "n_instances",
    "n_classes",
    "imbalance_ratio",
    "class_entropy",
    "height",
    "width",
    "channels",
    "class_size_mean",
    "class_size_std",
    "class_size_min",
    "class_size_max",
)

# Readable names for explanations ("class imbalance 2.9 -> -1.2 points").
FEATURE_LABELS: dict[str, str] = {
    "n_instances": "training images",
    "n_classes": "classes",
    "imbalance_ratio": "class imbalance (largest/smallest)",
    "class_entropy": "class entropy (bits)",
    "height": "image height (px)",
    "width": "image width (px)",
    "channels": "channels",
    "class_size_mean": "mean images per class",
    "class_size_std": "std of images per class",
    "class_size_min": "smallest class size",
    "class_size_max": "largest class size",
    "modality": "modality",
    "task": "task type",
}


def normalize_modality(value: str | None) -> str | None:
    """Map a free spelling ("X-Ray", "chest xray", "CT scan") onto one of MODALITIES, or raise."""
    if value is None:
        return None
    key = " ".join(str(value).strip().lower().replace("_", " ").split())
    if key in MODALITIES:
        return key
    if key.replace(" ", "-") in MODALITIES:
        return key.replace(" ", "-")
    if key in MODALITY_ALIASES:
        return MODALITY_ALIASES[key]
    raise ValueError(f"unknown modality {value!r}; choose one of {', '.join(MODALITIES)}")


class MetaFeatures(BaseModel):
    """One dataset's meta-features; every field may be missing."""

    model_config = ConfigDict(extra="forbid")

    n_instances: int | None = Field(None, ge=1, description="training images")
    n_classes: int | None = Field(None, ge=2, description="number of classes")
    imbalance_ratio: float | None = Field(None, ge=1.0, description="largest / smallest class")
    class_entropy: float | None = Field(None, ge=0.0, description="Shannon entropy of labels, bits")
    height: int | None = Field(None, ge=1)
    width: int | None = Field(None, ge=1)
    channels: int | None = Field(None, ge=1, le=4)
    class_size_mean: float | None = Field(None, ge=0.0)
    class_size_std: float | None = Field(None, ge=0.0)
    class_size_min: float | None = Field(None, ge=0.0)
    class_size_max: float | None = Field(None, ge=0.0)
    modality: Modality | None = None
    task: TaskType | None = None

    @field_validator("modality", mode="before")
    @classmethod
    def _modality(cls, value: object) -> object:
        return normalize_modality(value) if isinstance(value, str) else value

    def numeric(self) -> dict[str, float]:
        """The numeric features as floats, NaN where missing (the meta-learner's input)."""
        return {
            name: (float(v) if (v := getattr(self, name)) is not None else math.nan)
            for name in NUMERIC_FEATURES
        }

    def missing(self) -> list[str]:
        """Names of the fields that are not known."""
        return [name for name in type(self).model_fields if getattr(self, name) is None]


def from_class_counts(
    counts: Sequence[int] | np.ndarray,
    *,
    height: int | None = None,
    width: int | None = None,
    channels: int | None = None,
    modality: str | None = None,
    task: str | None = None,
) -> MetaFeatures:
    """Meta-features from per-class training counts (zero-count classes are ignored)."""
    c = np.asarray(counts, dtype=np.float64)
    c = c[c > 0]
    if c.size < 2:
        raise ValueError(f"need at least 2 classes with images, got {c.size}")
    n = float(c.sum())
    p = c / n
    return MetaFeatures(
        n_instances=int(n),
        n_classes=int(c.size),
        imbalance_ratio=round(float(c.max() / c.min()), 4),
        class_entropy=round(float(-(p * np.log2(p)).sum()), 4),
        height=height,
        width=width,
        channels=channels,
        class_size_mean=round(float(c.mean()), 4),
        class_size_std=round(float(c.std()), 4),
        class_size_min=float(c.min()),
        class_size_max=float(c.max()),
        modality=modality,
        task=task or ("binary" if c.size == 2 else "multi-class"),
    )


def from_labels(
    labels: np.ndarray,
    *,
    height: int | None = None,
    width: int | None = None,
    channels: int | None = None,
    modality: str | None = None,
    task: str | None = None,
) -> MetaFeatures:
    """Meta-features of a training split from its integer labels, shape (N,) or (N, 1)."""
    y = np.asarray(labels).reshape(len(labels), -1)
    if y.shape[1] > 1:  # multi-label: count positives per label
        counts = y.sum(axis=0)
        mf = from_class_counts(counts, height=height, width=width, channels=channels,
                               modality=modality, task="multi-label")
        return mf.model_copy(update={"n_instances": int(y.shape[0])})
    _, counts = np.unique(y[:, 0], return_counts=True)
    return from_class_counts(counts, height=height, width=width, channels=channels,
                             modality=modality, task=task)


def from_traits(
    *,
    n_instances: int | None = None,
    n_classes: int | None = None,
    imbalance_ratio: float | None = None,
    class_counts: Sequence[int] | None = None,
    height: int | None = None,
    width: int | None = None,
    channels: int | None = None,
    modality: str | None = None,
    task: str | None = None,
) -> MetaFeatures:
    """The same feature vector from what a user states ("about 3,000 chest X-rays, 3 classes, 512 px").

    Unknowns stay missing; what follows from the stated traits is derived: per-class counts give
    everything; otherwise a stated imbalance ratio with n and k gives the class sizes of a two-level
    split (one large class at `ratio` times the others), which is the maximum-entropy guess for it;
    and n with k alone gives the mean class size. A width without a height means a square image.
    """
    if class_counts is not None:
        return from_class_counts(class_counts, height=height, width=width, channels=channels,
                                 modality=modality, task=task)
    if height is not None and width is None:
        width = height
    if width is not None and height is None:
        height = width
    fields: dict[str, object] = dict(
        n_instances=n_instances, n_classes=n_classes, imbalance_ratio=imbalance_ratio,
        height=height, width=width, channels=channels, modality=modality, task=task,
    )
    if n_classes is not None and task is None:
        fields["task"] = "binary" if n_classes == 2 else "multi-class"
    if n_instances is not None and n_classes is not None:
        k = int(n_classes)
        fields["class_size_mean"] = round(n_instances / k, 4)
        if imbalance_ratio is not None:
            r = float(imbalance_ratio)
            small = n_instances / (r + k - 1)
            sizes = np.array([small * r] + [small] * (k - 1))
            p = sizes / sizes.sum()
            fields.update(
                class_entropy=round(float(-(p * np.log2(p)).sum()), 4),
                class_size_std=round(float(sizes.std()), 4),
                class_size_min=round(float(sizes.min()), 4),
                class_size_max=round(float(sizes.max()), 4),
            )
    return MetaFeatures(**fields)
