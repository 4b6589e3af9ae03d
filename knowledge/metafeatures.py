"""The paper's dataset meta-features, measured from labels or built from traits a user states.

Seven core features (`n_instances`, `n_classes`, `imbalance_ratio`, `class_entropy`, `height`,
`width`, `channels`), the class-size statistics, the imaging `modality` and the task type. Any of them
may be missing (`None`): a user may not know the class balance, and the meta-learner accepts gaps.

What cannot describe a real image-classification dataset is rejected (a ValidationError naming
the field and the value; `knowledge.recommend.meta_from_traits` turns it into a one-line
DatasetError): a boolean, NaN or infinity for a number, a count below 1 (classes below 2), a value
beyond the hard limits (`MAX_INSTANCES` training images, `MAX_SIDE` px per image side, 4
channels), and traits that contradict each other (more classes than images, a smallest class
larger than the average, a largest class larger than the dataset, an imbalance ratio above the
number of images, more label entropy than log2 of the classes). A value inside the hard limits
but outside what the meta-dataset records (5 million images, 4,000 px) is accepted: the
recommendation notes it (`knowledge.recommend.recorded_ranges`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any, Literal, get_args

import numpy as np
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

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


# --- hard limits -----------------------------------------------------------------------------------
# Beyond these a trait describes no dataset this tool can be asked about: it is rejected, not noted.
# 10^8 training images: seven times ImageNet-21k (14.2 M images, the largest public labelled image
# set), a thousand times the largest dataset of the meta-dataset; training on more takes a cluster
# for weeks, and the time predictions would be meaningless. Classes, class sizes and the imbalance
# ratio are bounded by it too (each class needs an image; the largest class holds at most all).
MAX_INSTANCES = 100_000_000
# 65,535 px per side: the largest a JPEG or GIF can store (16-bit size fields; WebP stops at
# 16,383). Larger images (whole-slide scans) are tiled before anyone trains a classifier on them,
# and PIL refuses far smaller ones by default (its decompression-bomb limit, ~179 M pixels).
MAX_SIDE = 65_535
MAX_CHANNELS = 4  # grayscale, grayscale + alpha, RGB, RGBA
_UPPER: dict[str, float] = {
    "n_instances": MAX_INSTANCES, "n_classes": MAX_INSTANCES, "imbalance_ratio": MAX_INSTANCES,
    "class_entropy": math.log2(MAX_INSTANCES), "height": MAX_SIDE, "width": MAX_SIDE,
    "channels": MAX_CHANNELS, "class_size_mean": MAX_INSTANCES, "class_size_std": MAX_INSTANCES,
    "class_size_min": MAX_INSTANCES, "class_size_max": MAX_INSTANCES,
}
_UNITS = {"n_instances": "training images", "height": "px", "width": "px"}


def short_repr(value: object, limit: int = 60) -> str:
    """repr(value), cut to about `limit` characters (an error message never carries a huge input)."""
    if isinstance(value, str) and len(value) > limit:
        return f"{value[:limit]!r}... ({len(value):,} characters)"
    if isinstance(value, (list, tuple, dict)) and len(value) > 10:
        return f"a {type(value).__name__} of {len(value):,} items"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return _number_text(value)  # repr of an int of over 4,300 digits raises
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _number_text(value: float) -> str:
    """'1,000,000,000', '2.5', 'about 10^400' (a number too long to print)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > 64:
            return f"{'-' if value < 0 else ''}about 10^{int(abs(value).bit_length() * 0.30103)}"
        return f"{value:,}"
    value = float(value)
    if not math.isfinite(value) or abs(value) >= 1e15:
        return f"{value:.3g}"
    return f"{value:,.0f}" if value.is_integer() else f"{value:,.4g}"


def reject_bool(value: Any) -> Any:
    """A before-validator for numeric fields: a boolean (JSON true/false) is not a number, although
    pydantic would read True as 1."""
    if isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{value!r} is a boolean, not a number")
    return value


# A per-class count as a user states it: a whole number, 0 to MAX_INSTANCES, not a boolean.
ClassCount = Annotated[int, BeforeValidator(reject_bool), Field(ge=0, le=MAX_INSTANCES)]


def validation_message(exc: ValidationError, field: str = "") -> str:
    """The first error of a ValidationError as one line naming the field and the value given:
    'n_instances: Input should be greater than or equal to 1 (got -5)'. `field`: the name of what
    was validated when the error's location does not say it (a TypeAdapter's value)."""
    err = exc.errors()[0]
    loc = field + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
    loc = loc.lstrip(".")
    msg = err["msg"].removeprefix("Value error, ")
    if err.get("type") != "value_error" and loc and "input" in err:
        msg += f" (got {short_repr(err['input'])})"
    return f"{loc}: {msg}" if loc else msg


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
    raise ValueError(f"unknown modality {short_repr(value)}; choose one of {', '.join(MODALITIES)}")


class MetaFeatures(BaseModel):
    """One dataset's meta-features; every field may be missing."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    n_instances: int | None = Field(None, ge=1, description="training images")
    n_classes: int | None = Field(None, ge=2, description="number of classes")
    imbalance_ratio: float | None = Field(None, ge=1.0, description="largest / smallest class")
    class_entropy: float | None = Field(None, ge=0.0, description="Shannon entropy of labels, bits")
    height: int | None = Field(None, ge=1)
    width: int | None = Field(None, ge=1)
    channels: int | None = Field(None, ge=1, le=MAX_CHANNELS)
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

    @field_validator(*NUMERIC_FEATURES, mode="before")
    @classmethod
    def _not_bool(cls, value: object) -> object:
        return reject_bool(value)

    @field_validator(*NUMERIC_FEATURES)
    @classmethod
    def _hard_limit(cls, value: float | None, info: Any) -> float | None:
        limit = _UPPER[info.field_name]
        if value is not None and value > limit:
            unit = f" {_UNITS[info.field_name]}" if info.field_name in _UNITS else ""
            raise ValueError(f"{_number_text(value)}{unit} is beyond the hard limit of "
                             f"{_number_text(limit)}{unit}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MetaFeatures:
        """Traits that contradict each other (see the module doc); multi-label datasets count
        positives per label, so only the largest-class and entropy checks apply to them."""
        n, k = self.n_instances, self.n_classes
        lo, hi, mean = self.class_size_min, self.class_size_max, self.class_size_mean
        single = self.task != "multi-label"

        def slack(x: float) -> float:  # the derived sizes are rounded to 4 decimals
            return 1e-3 + 1e-9 * abs(x)

        if single and n is not None and k is not None and k > n:
            raise ValueError(f"n_classes {k:,} exceeds n_instances {n:,}: every class needs at "
                             "least one training image")
        if lo is not None and hi is not None and lo > hi + slack(hi):
            raise ValueError(f"class_size_min {_number_text(lo)} exceeds class_size_max "
                             f"{_number_text(hi)}")
        if mean is not None and lo is not None and mean < lo - slack(lo):
            raise ValueError(f"class_size_mean {_number_text(mean)} is below class_size_min "
                             f"{_number_text(lo)}")
        if mean is not None and hi is not None and mean > hi + slack(hi):
            raise ValueError(f"class_size_mean {_number_text(mean)} exceeds class_size_max "
                             f"{_number_text(hi)}")
        if n is not None:
            if hi is not None and hi > n + slack(n):
                raise ValueError(f"class_size_max {_number_text(hi)} exceeds n_instances {n:,}: "
                                 "no class holds more images than the dataset")
            if self.imbalance_ratio is not None and self.imbalance_ratio > n + slack(n):
                raise ValueError(f"imbalance_ratio {_number_text(self.imbalance_ratio)} exceeds "
                                 f"n_instances {n:,}: the largest class cannot hold more than "
                                 "n_instances times the smallest")
            if single and k is not None and lo is not None and lo > n / k + slack(n / k):
                raise ValueError(f"class_size_min {_number_text(lo)} exceeds n_instances / "
                                 f"n_classes = {_number_text(n / k)}: the smallest class cannot be "
                                 "larger than the average one")
        if k is not None and self.class_entropy is not None and (
                self.class_entropy > math.log2(k) + 1e-3):
            raise ValueError(f"class_entropy {_number_text(self.class_entropy)} bits exceeds "
                             f"log2(n_classes) = {math.log2(k):.4g} bits, the most {k:,} classes "
                             "can have")
        return self

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
    if c.size and (not np.isfinite(c).all() or (c < 0).any()):
        raise ValueError("class counts must be finite and not negative")
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
