"""The user's own runs as evidence: what importing them needs in common (docs/RUN_IMPORT.md).

Runs come from an Optuna study (`knowledge.runs.import_optuna`) or a CSV of runs
(`knowledge.runs.import_csv`, which also dispatches a `runs export` file as before) and become
`RunRecord`s with provenance source `user`. The meta-learner pools them with the published and own
runs (the advisor refits when the store changes) and a recommendation says how many of its backing
runs are yours. Here: the error (`RunImportError`), the dataset the runs trained on
(`user_dataset`: traits or a measured dataset spec) and config values (`coerce`, `parse_fixed`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from knowledge.errors import DatasetError, StoreError
from knowledge.metafeatures import MetaFeatures, short_repr
from knowledge.search_space import SPACE, TrainConfig

FIELDS: tuple[str, ...] = tuple(TrainConfig.model_fields)
VALUE_KINDS = ("test_acc", "val_acc", "test_error", "val_error")  # what an accuracy value is


class RunImportError(StoreError):
    """The runs to import cannot be read or mapped; nothing was imported."""


# --- the user's dataset ------------------------------------------------------------------------

@dataclass(frozen=True)
class UserDataset:
    """The dataset a user's runs trained on: its ids and meta-features (measured or stated)."""

    dataset_id: str
    base_dataset: str
    meta_features: MetaFeatures
    variant: str | None = None
    medical: bool = True


def _check_name(name: str, what: str = "dataset name") -> str:
    text = (name or "").strip()
    if not text or len(text) > 100 or any(ch in text for ch in "\r\n\t"):
        raise RunImportError(f"{what} {short_repr(name)}: give 1-100 characters on one line")
    return text


def _medical(modality: str | None) -> bool:
    return modality != "natural"


def user_dataset(spec_or_traits: str, *, name: str | None = None,
                 modality: str | None = None) -> UserDataset:
    """The dataset of a user's runs: traits JSON (`{"n_instances": 3000, ...}`, as `recommend
    --traits`; needs `name`) or a dataset spec (`load_dataset`: measured, named by its own id)."""
    text = (spec_or_traits or "").strip()
    if text.startswith("{"):
        from knowledge.recommend.traits import meta_from_traits  # lazy: loads the meta-learner stack

        try:
            traits = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise DatasetError(f"--dataset traits are not valid JSON ({str(exc).split(';')[0]}): "
                               f"{short_repr(text)}") from None
        meta = meta_from_traits(traits)
        if name is None:
            raise RunImportError("--dataset as traits needs a name for the dataset (--dataset-name)")
        base = _check_name(name)
        return UserDataset(f"user:{base}", base, meta, medical=_medical(meta.modality))
    from knowledge.datasets import load_dataset  # lazy: the dataset readers are only needed here

    ds = load_dataset(text, modality=modality)
    return UserDataset(ds.id, ds.base, ds.meta_features(), ds.variant, ds.medical)


# --- values ------------------------------------------------------------------------------------

def parse_pairs(items: Iterable[str] | None, option: str) -> dict[str, str]:
    """`["a=b", ...]` -> `{"a": "b"}`; RunImportError for a malformed or repeated one."""
    out: dict[str, str] = {}
    for item in items or ():
        key, sep, value = str(item).partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key or not value:
            raise RunImportError(f"{option} {short_repr(item)}: expected NAME=VALUE")
        if key in out:
            raise RunImportError(f"{option}: {key!r} is given twice")
        out[key] = value
    return out


def _kind(name: str) -> type:
    return TrainConfig.model_fields[name].annotation  # type: ignore[return-value]


def coerce(name: str, value: Any) -> Any:
    """`value` as the type of config field `name` (text is parsed); ValueError if it is not one."""
    kind = _kind(name)
    if isinstance(value, str):
        text = value.strip()
        if kind is bool:
            low = text.lower()
            if low in ("true", "1", "yes", "y", "t"):
                return True
            if low in ("false", "0", "no", "n", "f"):
                return False
            raise ValueError(f"{short_repr(value)} is not true or false")
        if kind is str:
            if not text:
                raise ValueError("is blank")
            return text
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{short_repr(value)} is not a number") from None
        return coerce(name, number)
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ValueError(f"{short_repr(value)} is not true or false")
    if kind is str:
        if isinstance(value, str):
            return value
        raise ValueError(f"{short_repr(value)} is not text")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{short_repr(value)} is not a finite number")
    if kind is int:
        if float(value) != int(value):
            raise ValueError(f"{short_repr(value)} is not a whole number")
        return int(value)
    return float(value)


def space_error(name: str, value: Any) -> str | None:
    """Why `value` is not allowed for config field `name` (None when it is)."""
    param = SPACE.params[name]
    return None if param.check(value) else f"{short_repr(value)} is not allowed; allowed: {param.allowed()}"


def field_value(name: str, raw: Any) -> Any:
    """`raw` typed (`coerce`) and checked against the search space; ValueError saying why not."""
    value = coerce(name, raw)
    problem = space_error(name, value)
    if problem:
        raise ValueError(problem)
    return value


def parse_fixed(items: Iterable[str] | None) -> dict[str, Any]:
    """`--fixed our_name=value` pairs, typed and checked against the search space."""
    out: dict[str, Any] = {}
    for key, text in parse_pairs(items, "--fixed").items():
        if key not in FIELDS:
            raise RunImportError(f"--fixed {key}={text}: {key!r} is not a search-space field; "
                                 f"fields: {', '.join(FIELDS)}")
        try:
            out[key] = field_value(key, text)
        except ValueError as exc:
            raise RunImportError(f"--fixed {key}: {exc}") from None
    return out
