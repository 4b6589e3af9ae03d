"""Stated dataset traits: `meta_from_traits` turns them into meta-features, and the traits the
meta-dataset never recorded get a note (`recorded_ranges`, `outside_ranges`, `range_note`)."""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from knowledge.errors import DatasetError
from knowledge.metafeatures import (
    FEATURE_LABELS,
    ClassCount,
    MetaFeatures,
    from_traits,
    short_repr,
    validation_message,
)
from knowledge.recommend.text import _value, _whole

# Traits a user (or an LLM) may state: every meta-feature, plus per-class counts.
TRAIT_KEYS: tuple[str, ...] = (*MetaFeatures.model_fields, "class_counts")
_FROM_TRAITS_KEYS = ("n_instances", "n_classes", "imbalance_ratio", "class_counts", "height", "width",
                     "channels", "modality", "task")
_COUNTS = TypeAdapter(list[ClassCount])
# Traits whose value is compared with the range the meta-dataset records (`recorded_ranges`).
RANGE_TRAITS: tuple[str, ...] = ("n_instances", "n_classes", "imbalance_ratio", "height", "width",
                                 "channels")


def meta_from_traits(traits: Mapping[str, Any]) -> MetaFeatures:
    """Meta-features from stated traits (keys: `TRAIT_KEYS`; None values are ignored).

    The `from_traits` keys derive what follows from them (class sizes, entropy, square images);
    the other meta-features (class_entropy, class_size_*) are taken as stated. Raises DatasetError,
    one line naming the key and the value, for an unknown key or a value no dataset can have (a
    boolean, NaN, a count below 1, beyond the hard limits, contradicting another trait: see
    `knowledge.metafeatures`). A value merely outside what the meta-dataset records is accepted
    (the recommendation notes it).
    """
    if not isinstance(traits, Mapping):
        raise DatasetError(f"traits must be a JSON object of trait: value, got {type(traits).__name__}")
    unknown = [k for k in traits if k not in TRAIT_KEYS]
    if unknown:
        raise DatasetError(f"traits: unknown key {short_repr(str(unknown[0]), limit=40)}; "
                           f"allowed keys: {', '.join(TRAIT_KEYS)}")
    given = {k: v for k, v in traits.items() if v is not None}
    counts = given.pop("class_counts", None)
    try:
        checked = MetaFeatures.model_validate(given)  # types and ranges, before any arithmetic
    except ValidationError as exc:
        raise DatasetError(f"traits: {validation_message(exc)}") from None
    derived_args = {k: getattr(checked, k) for k in _FROM_TRAITS_KEYS if k in given}
    if counts is not None:
        try:
            derived_args["class_counts"] = _COUNTS.validate_python(counts)
        except ValidationError as exc:
            raise DatasetError(f"traits: {validation_message(exc, 'class_counts')}") from None
    try:
        derived = from_traits(**derived_args)
        explicit = {k: getattr(checked, k) for k in given if k not in _FROM_TRAITS_KEYS}
        return MetaFeatures.model_validate({**derived.model_dump(), **explicit})
    except ValidationError as exc:
        message = validation_message(exc)
        where = "class_counts: " if counts is not None and "class_counts" not in message else ""
        raise DatasetError(f"traits: {where}{message}") from None
    except ValueError as exc:
        raise DatasetError(f"traits: class_counts: {exc}") from None


def recorded_ranges(index: Any) -> dict[str, tuple[float, float]]:
    """[min, max] of each of `RANGE_TRAITS` over the datasets of the index's ok runs (the runs
    the meta-learner is fitted on; every run when none is ok): the range the meta-dataset covers.
    Made once per index (and again when runs are added); {} for an index without records."""
    records = getattr(index, "records", None)
    if records is None:
        return {}
    size = len(records)
    try:
        cached = _RANGES.get(index)
    except TypeError:  # not weak-referenceable: no cache
        cached = None
    if cached is not None and cached[0] == size:
        return cached[1]
    ok = [r for r in records if getattr(r, "status", "ok") == "ok"] or records
    ranges: dict[str, tuple[float, float]] = {}
    for name in RANGE_TRAITS:
        values = [float(v) for r in ok if (v := getattr(r.meta_features, name, None)) is not None]
        if values:
            ranges[name] = (min(values), max(values))
    try:
        _RANGES[index] = (size, ranges)
    except TypeError:
        pass
    return ranges


_RANGES: weakref.WeakKeyDictionary[Any, tuple[int, dict[str, tuple[float, float]]]] = (
    weakref.WeakKeyDictionary())


def outside_ranges(meta: MetaFeatures, ranges: Mapping[str, tuple[float, float]]
                   ) -> dict[str, list[float]]:
    """The traits of `meta` outside the recorded `ranges`: name -> [recorded min, recorded max]."""
    out: dict[str, list[float]] = {}
    for name in RANGE_TRAITS:
        value = getattr(meta, name)
        if value is None or name not in ranges:
            continue
        lo, hi = ranges[name]
        if value < lo - 1e-9 or value > hi + 1e-9:
            out[name] = [lo, hi]
    return out


_RANGE_WORDS = {"n_instances": "training images", "n_classes": "classes",
                "imbalance_ratio": "largest / smallest class", "height": "image height, px",
                "width": "image width, px", "channels": "channels"}


def range_note(meta: MetaFeatures, outside: Mapping[str, list[float]]) -> str | None:
    """The note of traits outside the meta-dataset's range: each trait, its value and the
    recorded range (a square image out of range is said once, as "height and width")."""
    if not outside:
        return None
    square = ("height" in outside and "width" in outside and meta.height == meta.width
              and outside["height"] == outside["width"])
    parts = []
    for name, (lo, hi) in outside.items():
        if square and name == "width":
            continue
        said, words = (("height and width", "image side, px") if square and name == "height"
                       else (name, _RANGE_WORDS.get(name, FEATURE_LABELS.get(name, name))))
        parts.append(f"{said} {_value(getattr(meta, name))} ({words}; recorded "
                     f"{_value(_whole(lo))} to {_value(_whole(hi))})")
    return ("These traits lie outside the range the meta-dataset records, and the meta-learner "
            "treats each like the nearest recorded value, so the predictions are less certain "
            "than their intervals say: " + "; ".join(parts) + ".")
