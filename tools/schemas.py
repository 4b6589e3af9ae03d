"""Argument schemas of the tools, written for a small LLM: every field says what it means and
which values are allowed. Only shapes and types are checked here; the meaning (modality spellings,
search-space ranges) is checked by knowledge/, whose one-line errors go back to the LLM.

The trait schema is derived from `knowledge.metafeatures.MetaFeatures` (`trait_fields`): its
fields, their types and bounds, and the modality vocabulary. `Traits` (the tools' arguments) and
`agent.extraction.TurnExtraction` (what one user message states) are both built from it, so a
trait added to MetaFeatures appears in both; only the LLM-facing wording lives here."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator
from pydantic.fields import FieldInfo

from knowledge.metafeatures import FEATURE_LABELS, MetaFeatures, reject_bool
from knowledge.search_space import MODELS, SPACE

_MODELS = ", ".join(MODELS)

# Traits that take a word from a fixed vocabulary but are accepted in free spelling ("X-ray",
# "CT scan"): a `str` here, mapped onto the vocabulary by knowledge/ (`normalize_modality`).
FREE_SPELLING: tuple[str, ...] = ("modality",)


def vocabulary(annotation: Any) -> tuple[str, ...]:
    """The allowed words of a Literal trait (`Modality | None` -> MODALITIES), else ()."""
    if get_origin(annotation) is Literal:
        return tuple(get_args(annotation))
    for arg in get_args(annotation):  # Optional[...] / X | None
        if words := vocabulary(arg):
            return words
    return ()


def _numeric(annotation: Any) -> bool:
    return annotation in (int, float) or any(_numeric(a) for a in get_args(annotation))


def trait_fields(descriptions: Mapping[str, str] = {}, *, exclude: Iterable[str] = (),  # noqa: B006
                 model: type[BaseModel] = MetaFeatures) -> dict[str, tuple[Any, FieldInfo]]:
    """`create_model` field definitions of the traits of `model` (MetaFeatures), every one
    optional (default None), with its type and bounds (ge/le...). The description is
    `descriptions[name]` (may hold `{vocab}`, the allowed words), else the field's own, else its
    FEATURE_LABELS entry; a Literal trait lists its vocabulary, and a FREE_SPELLING one becomes a
    `str` (knowledge/ maps the spelling)."""
    skip = set(exclude)
    out: dict[str, tuple[Any, FieldInfo]] = {}
    for name, info in model.model_fields.items():
        if name in skip:
            continue
        words = vocabulary(info.annotation)
        text = (descriptions.get(name) or info.description or FEATURE_LABELS.get(name)
                or name.replace("_", " "))
        annotation = info.annotation
        if words:
            listed = ", ".join(words)
            text = text.format(vocab=listed) if "{vocab}" in text else f"{text}, one of: {listed}"
            if name in FREE_SPELLING:
                annotation = Union[str, None]  # noqa: UP007 - a runtime type object
        field = FieldInfo.merge_field_infos(info, default=None, description=text)
        out[name] = (annotation, field)
    return out


def numeric_traits(schema: type[BaseModel]) -> tuple[str, ...]:
    """The number-valued fields of a derived schema (a boolean is refused for each)."""
    return tuple(n for n, f in schema.model_fields.items() if _numeric(f.annotation))


def _ordered(fields: dict[str, Any], after: str, extra: dict[str, Any]) -> dict[str, Any]:
    """`fields` with `extra` inserted after the key `after` (at the end when it is missing)."""
    out: dict[str, Any] = {}
    for key, value in fields.items():
        out[key] = value
        if key == after:
            out.update(extra)
    out.update(extra)
    return out


def derive_traits_model(name: str, base: type[BaseModel], descriptions: Mapping[str, str], *,
                        exclude: Iterable[str] = (), extra: dict[str, Any] | None = None,
                        extra_after: str = "imbalance_ratio", tail: dict[str, Any] | None = None,
                        doc: str | None = None,
                        model: type[BaseModel] = MetaFeatures) -> type[BaseModel]:
    """A model named `name` on `base` with the traits of `model` (`trait_fields`), plus `extra`
    trait fields (placed after `extra_after`), then the `tail` fields, and a validator refusing
    booleans for every number."""
    fields = _ordered(trait_fields(descriptions, exclude=exclude, model=model), extra_after,
                      dict(extra or {}))
    fields.update(tail or {})
    numbers = [n for n, (ann, _) in fields.items() if _numeric(ann) and get_origin(ann) is not list
               and not any(get_origin(a) is list for a in get_args(ann))]

    def _not_bool(cls: type, value: object) -> object:
        return reject_bool(value)  # pydantic would read true as 1

    validators = {"_not_bool": field_validator(*numbers, mode="before")(_not_bool)} if numbers else {}
    derived = create_model(name, __base__=base, __module__=base.__module__, __validators__=validators,
                           **fields)
    derived.__doc__ = doc or base.__doc__
    return derived


class _TraitsBase(BaseModel):
    """What is known about the user's dataset. Leave out what the user did not say."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @field_validator("class_counts", mode="before", check_fields=False)
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


# The tools' wording of each trait (a small LLM reads it); a trait not named here is described by
# MetaFeatures itself. `{vocab}`: the allowed words.
TOOL_DESCRIPTIONS: dict[str, str] = {
    "n_instances": "number of training images, e.g. 3000",
    "n_classes": "number of classes, e.g. 3",
    "imbalance_ratio": "images in the largest class / images in the smallest, e.g. 2.5",
    "height": "image height in pixels, e.g. 512",
    "width": "image width in pixels (default: = height)",
    "channels": "1 for grayscale, 3 for RGB",
    "modality": "imaging modality, one of: {vocab} (common spellings like 'X-ray', 'CT scan' work)",
    "task": "task type (default from n_classes)",
    "class_entropy": "entropy of the labels, bits",
    "class_size_mean": "mean images per class",
    "class_size_std": "std of images per class",
    "class_size_min": "images in the smallest class",
    "class_size_max": "images in the largest class",
}
CLASS_COUNTS_FIELD: tuple[Any, FieldInfo] = (list[int] | None, Field(
    None, description="training images per class, e.g. [1200, 900, 400] (gives n_instances, "
                      "n_classes and the imbalance at once)"))



def make_traits(model: type[BaseModel] = MetaFeatures) -> type[BaseModel]:
    """The tools' `Traits` schema derived from `model`: every trait, plus class_counts."""
    return derive_traits_model("Traits", _TraitsBase, TOOL_DESCRIPTIONS, model=model,
                               extra={"class_counts": CLASS_COUNTS_FIELD})


Traits = make_traits()


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
