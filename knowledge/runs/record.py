"""A run record: one training run (our own, published, or the user's) with everything needed to learn from it.

The schema refuses records that cannot describe a real run (each a ValidationError naming the field):
numbers that are NaN, infinite or negative (times, memory, accuracies outside [0, 1]); a timestamp
that is not an ISO 8601 date-time; a blank run_id, dataset_id or base_dataset; a run with status
`ok` and no accuracy (neither `val_acc` nor `test_acc`); a published record without a citation;
and meta-features that contradict each other (see `MetaFeatures`).
Errors that concern one field but are found by a model validator carry that field in their context
(`ctx["column"]`, the flat column name, e.g. `prov.citation`; see `error_column`).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from knowledge.metafeatures import MetaFeatures
from knowledge.search_space import TrainConfig

RunStatus = Literal["ok", "failed", "diverged", "out-of-memory", "timeout", "cancelled"]
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
# "user": a run the user imported (`metallmix runs import`: an Optuna study or a CSV of their runs);
# fitted on like an own run, and counted apart in a recommendation's support ("3 of them yours").
Source = Literal["own", "published", "user"]


def _field_error(column: str, message: str) -> PydanticCustomError:
    """A validation error about one flat column (`prov.citation`), raised from a model validator."""
    return PydanticCustomError("record_field", "{column}: {message}", {"column": column, "message": message})


def error_column(err: dict) -> str | None:
    """The flat column a `record_field` error is about (None for other errors)."""
    ctx = err.get("ctx") or {}
    return ctx.get("column") if err.get("type") == "record_field" else None


class Outcome(BaseModel):
    """What a run achieved. Accuracies, AUC and F1 are fractions in [0, 1]; missing when unknown.
    Every number is finite (no NaN or infinity)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    val_acc: float | None = Field(None, ge=0, le=1)
    test_acc: float | None = Field(None, ge=0, le=1)
    test_acc_std: float | None = Field(None, ge=0, description="std over seeds (published)")
    test_auc: float | None = Field(None, ge=0, le=1)
    test_auc_std: float | None = Field(None, ge=0)
    test_f1: float | None = Field(None, ge=0, le=1, description="macro-F1")
    train_seconds: float | None = Field(None, ge=0)
    seconds_per_epoch: float | None = Field(None, ge=0)
    epochs_completed: int | None = Field(None, ge=0)
    val_images: int | None = Field(
        None, ge=0, description="validation images evaluated after each epoch (train_seconds include "
                                "those passes; the CPU time model discounts them)")
    peak_memory_mb: float | None = Field(None, ge=0)
    n_seeds: int | None = Field(None, ge=1)


class Provenance(BaseModel):
    """Where a record comes from. `timestamp`: an ISO 8601 date-time; a published record names its
    `citation`."""

    model_config = ConfigDict(extra="forbid")

    source: Source
    code_version: str | None = None
    seed: int | None = None
    device: str | None = None
    timestamp: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    citation: str | None = None
    study: str | None = None  # the sweep/study that produced it, if any
    # the intra-op CPU threads the training used (None: a GPU run, a published record, or a run
    # recorded before threads were; the cost model reads those own CPU runs as 1 thread)
    threads: int | None = Field(None, ge=1, le=1024)

    @field_validator("timestamp")
    @classmethod
    def _iso_timestamp(cls, value: str) -> str:
        text = value.strip()
        try:  # a trailing Z (UTC) as Python 3.10's fromisoformat does not read it
            datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
        except ValueError:
            raise ValueError(f"not an ISO 8601 date-time: {value[:60]!r}") from None
        return value

    @model_validator(mode="after")
    def _published_cites(self) -> Provenance:
        if self.source == "published" and not (self.citation or "").strip():
            raise _field_error("prov.citation", "a published record needs a citation (where the result "
                                                "was published)")
        return self


class RunRecord(BaseModel):
    """One run. `run_id` is unique in a store; published records get a deterministic id."""

    model_config = ConfigDict(extra="forbid")

    run_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    dataset_id: str = Field(description="canonical source name incl. variant, e.g. "
                                        "'medmnist:pneumoniamnist?n=500&seed=0'")
    base_dataset: str = Field(description="the dataset a variant comes from, e.g. 'pneumoniamnist'")
    variant: str | None = Field(None, description="variant query, e.g. 'n=500&seed=0'")
    medical: bool = True
    meta_features: MetaFeatures
    config: TrainConfig
    outcome: Outcome = Field(default_factory=Outcome)
    status: RunStatus = "ok"
    error: str | None = None
    provenance: Provenance

    @field_validator("run_id", "dataset_id", "base_dataset")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @model_validator(mode="after")
    def _ok_has_accuracy(self) -> RunRecord:
        out = self.outcome
        if self.status == "ok" and out.val_acc is None and out.test_acc is None:
            raise _field_error("out.val_acc", "a run with status 'ok' needs an accuracy (val_acc or "
                                              "test_acc)")
        return self

    @staticmethod
    def stable_id(*parts: object) -> str:
        """A deterministic id from parts (used for published records, so re-imports do not duplicate)."""
        text = json.dumps([str(p) for p in parts])
        return hashlib.sha1(text.encode()).hexdigest()[:32]


# --- flat form: one row per record, used by the store's frames, CSV/Parquet export and the meta-learner.
# Columns: the record's scalar fields, then `mf.<meta-feature>`, `cfg.<config field>`,
# `out.<outcome field>`, `prov.<provenance field>`.
_GROUPS = {"meta_features": "mf", "config": "cfg", "outcome": "out", "provenance": "prov"}


def record_to_row(record: RunRecord) -> dict:
    """A flat dict of a record (see the column convention above)."""
    data = record.model_dump(mode="json")
    row = {k: v for k, v in data.items() if k not in _GROUPS}
    for group, prefix in _GROUPS.items():
        for key, value in data[group].items():
            row[f"{prefix}.{key}"] = value
    return row


def row_to_record(row: dict) -> RunRecord:
    """Inverse of `record_to_row`; NaN / None / '' cells become missing values, except a blank
    `run_id` cell, which is refused (a missing value would get a fresh random id, and each
    re-import of the row would add it again)."""
    import math

    def clean(v: object) -> object:
        if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
            return None
        return v.item() if hasattr(v, "item") else v

    top: dict = {}
    groups: dict[str, dict] = {g: {} for g in _GROUPS}
    prefixes = {p: g for g, p in _GROUPS.items()}
    for key, value in row.items():
        prefix, _, name = str(key).partition(".")
        value = clean(value)
        if name and prefix in prefixes:
            if value is not None:
                groups[prefixes[prefix]][name] = value
        elif value is not None:
            top[key] = value
        elif key == "run_id":
            top[key] = ""  # blank: rejected by the schema
    return RunRecord(**top, **groups)
