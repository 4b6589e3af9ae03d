"""Argument schemas of the tools, written for a small LLM: every field says what it means and
which values are allowed. Only shapes and types are checked here; the meaning (modality spellings,
search-space ranges) is checked by knowledge/, whose one-line errors go back to the LLM."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from knowledge.metafeatures import MODALITIES, NUMERIC_FEATURES, reject_bool
from knowledge.search_space import MODELS, SPACE

_MODELS = ", ".join(MODELS)
_MODALITIES = ", ".join(MODALITIES)


class Traits(BaseModel):
    """What is known about the user's dataset. Leave out what the user did not say."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    n_instances: int | None = Field(None, ge=1, description="number of training images, e.g. 3000")
    n_classes: int | None = Field(None, ge=2, description="number of classes, e.g. 3")
    imbalance_ratio: float | None = Field(
        None, ge=1.0, description="images in the largest class / images in the smallest, e.g. 2.5")
    class_counts: list[int] | None = Field(
        None, description="training images per class, e.g. [1200, 900, 400] (gives n_instances, "
                          "n_classes and the imbalance at once)")
    height: int | None = Field(None, ge=1, description="image height in pixels, e.g. 512")
    width: int | None = Field(None, ge=1, description="image width in pixels (default: = height)")
    channels: int | None = Field(None, ge=1, le=4, description="1 for grayscale, 3 for RGB")
    modality: str | None = Field(None, description=f"imaging modality, one of: {_MODALITIES} "
                                                   "(common spellings like 'X-ray', 'CT scan' work)")
    task: Literal["binary", "multi-class", "multi-label", "ordinal-regression"] | None = Field(
        None, description="task type (default from n_classes)")
    class_entropy: float | None = Field(None, ge=0.0, description="entropy of the labels, bits")
    class_size_mean: float | None = Field(None, ge=0.0, description="mean images per class")
    class_size_std: float | None = Field(None, ge=0.0, description="std of images per class")
    class_size_min: float | None = Field(None, ge=0.0, description="images in the smallest class")
    class_size_max: float | None = Field(None, ge=0.0, description="images in the largest class")

    @field_validator(*NUMERIC_FEATURES, mode="before")
    @classmethod
    def _not_bool(cls, value: object) -> object:
        return reject_bool(value)  # pydantic would read true as 1

    @field_validator("class_counts", mode="before")
    @classmethod
    def _counts_not_bool(cls, value: object) -> object:
        if isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                if isinstance(v, bool):
                    raise ValueError(f"item {i}: {v!r} is a boolean, not a number")
        return value

    def stated(self) -> dict:
        """The traits given (None left out)."""
        return self.model_dump(exclude_none=True)


class Config(BaseModel):
    """A training config. Only `model` is required; the rest default to common values."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description=f"timm model name, one of: {_MODELS}")
    pretrained: bool | None = Field(None, description="start from ImageNet weights (default true)")
    scheme: Literal["end_to_end", "linear_probing", "knn"] | None = Field(
        None, description="end_to_end (fine-tune everything, default), linear_probing (train the "
                          "last layer only), knn (no training; explain/rank only)")
    resolution: int | None = Field(
        None, description=f"input size in px, one of {SPACE.params['resolution'].allowed()} "
                          "(default 28)")
    optimizer: Literal["adamw", "adam", "sgd"] | None = Field(None, description="default adamw")
    lr: float | None = Field(None, gt=0, description="learning rate, e.g. 0.001")
    weight_decay: float | None = Field(None, ge=0, description="e.g. 0.0001")
    batch_size: int | None = Field(None, description="one of 8, 16, 32, 64, 128, 256, 512")
    epochs: int | None = Field(None, ge=1, le=300, description="training epochs, e.g. 10")
    augmentation: Literal["none", "light", "strong"] | None = Field(None, description="default light")
    label_smoothing: float | None = Field(None, ge=0, le=0.3, description="default 0")

    def stated(self) -> dict:
        return self.model_dump(exclude_none=True)
