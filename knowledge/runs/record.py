"""A run record: one training run (our own or published) with everything needed to learn from it."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from knowledge.metafeatures import MetaFeatures
from knowledge.search_space import TrainConfig

RunStatus = Literal["ok", "failed", "diverged", "out-of-memory", "timeout", "cancelled"]
RUN_STATUSES: tuple[str, ...] = get_args(RunStatus)
Source = Literal["own", "published"]


class Outcome(BaseModel):
    """What a run achieved. Accuracies, AUC and F1 are fractions in [0, 1]; missing when unknown."""

    model_config = ConfigDict(extra="forbid")

    val_acc: float | None = Field(None, ge=0, le=1)
    test_acc: float | None = Field(None, ge=0, le=1)
    test_acc_std: float | None = Field(None, ge=0, description="std over seeds (published)")
    test_auc: float | None = Field(None, ge=0, le=1)
    test_auc_std: float | None = Field(None, ge=0)
    test_f1: float | None = Field(None, ge=0, le=1, description="macro-F1")
    train_seconds: float | None = Field(None, ge=0)
    seconds_per_epoch: float | None = Field(None, ge=0)
    epochs_completed: int | None = Field(None, ge=0)
    peak_memory_mb: float | None = Field(None, ge=0)
    n_seeds: int | None = Field(None, ge=1)


class Provenance(BaseModel):
    """Where a record comes from."""

    model_config = ConfigDict(extra="forbid")

    source: Source
    code_version: str | None = None
    seed: int | None = None
    device: str | None = None
    timestamp: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    citation: str | None = None
    study: str | None = None  # the sweep/study that produced it, if any


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
    """Inverse of `record_to_row`; NaN / None / '' cells become missing values."""
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
    return RunRecord(**top, **groups)
