"""Model inputs of the meta-learner: dataset meta-features + training config, one row per run.

`featurize(frame)` turns the flat record form (`knowledge.runs.record.record_to_row` columns:
`mf.*`, `cfg.*`) into the feature frame; `featurize_one(meta, configs)` builds the same frame for
one dataset and many candidate configs (the ranking path, vectorised: one frame, no per-row work).

Categorical columns use pandas' `category` dtype with FIXED category lists (`CATEGORIES`), so a frame
built at prediction time has exactly the codes the model was trained with (XGBoost's native
categorical support, `enable_categorical=True`). Unknown values become missing (NaN), which XGBoost
routes down its learnt default branch, as it does for any missing meta-feature.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from knowledge.metafeatures import FEATURE_LABELS as MF_LABELS
from knowledge.metafeatures import MODALITIES, NUMERIC_FEATURES, TASK_TYPES, MetaFeatures
from knowledge.search_space import MODELS, SCHEMES, SPACE, TrainConfig

# Weight decay 0 is allowed; its log10 is floored here (one decade below the smallest non-zero
# value of the search space, 1e-6), so "no weight decay" sorts below every real value.
WD_FLOOR = 1e-7
AUGMENTATION_LEVELS: dict[str, int] = {"none": 0, "light": 1, "strong": 2}

CATEGORIES: dict[str, list[str]] = {
    "modality": list(MODALITIES),
    "task": list(TASK_TYPES),
    "model": list(MODELS),
    "family": sorted({m.family for m in MODELS.values()}),
    "scheme": list(SCHEMES),
    "optimizer": [str(c) for c in SPACE.params["optimizer"].choices],  # type: ignore[union-attr]
}

CONFIG_FEATURES: tuple[str, ...] = (
    "model",
    "family",
    "params_m",
    "pretrained",
    "scheme",
    "resolution",
    "resolution_ratio",
    "optimizer",
    "log10_lr",
    "log10_weight_decay",
    "batch_size",
    "epochs",
    "augmentation",
    "label_smoothing",
)
FEATURE_COLUMNS: tuple[str, ...] = (*NUMERIC_FEATURES, "modality", "task", *CONFIG_FEATURES)

FEATURE_LABELS: dict[str, str] = {
    **{name: MF_LABELS[name] for name in (*NUMERIC_FEATURES, "modality", "task")},
    "model": "model",
    "family": "model family",
    "params_m": "model size (M parameters)",
    "pretrained": "ImageNet-pretrained weights",
    "scheme": "training scheme",
    "resolution": "input resolution (px)",
    "resolution_ratio": "resolution / native image size",
    "optimizer": "optimizer",
    "log10_lr": "learning rate (log10)",
    "log10_weight_decay": "weight decay (log10)",
    "batch_size": "batch size",
    "epochs": "epochs",
    "augmentation": "augmentation (0 none, 1 light, 2 strong)",
    "label_smoothing": "label smoothing",
}

# Columns that describe one thing, shown as one factor in explanations (first = the one whose
# value is shown). Every feature not listed is its own group.
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {
    "model": ("model", "family", "params_m"),
    "resolution": ("resolution", "resolution_ratio"),
    "image size": ("height", "width"),
    "class sizes": ("class_size_mean", "class_size_std", "class_size_min", "class_size_max"),
}
GROUP_LABELS: dict[str, str] = {
    "model": "model",
    "resolution": "input resolution",
    "image size": "native image size",
    "class sizes": "images per class",
}

_PARAMS_M = {name: spec.params_m for name, spec in MODELS.items()}
_FAMILY = {name: spec.family for name, spec in MODELS.items()}


def group_of(column: str) -> str:
    """The explanation group a feature column belongs to (its own name when ungrouped)."""
    for group, members in FEATURE_GROUPS.items():
        if column in members:
            return group
    return column


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame:
        return pd.Series(np.nan, index=frame.index, dtype="float64")
    return pd.to_numeric(frame[column], errors="coerce").astype("float64")


def _categorical(values: pd.Series | None, name: str, index: pd.Index) -> pd.Series:
    dtype = pd.CategoricalDtype(CATEGORIES[name])
    if values is None:
        return pd.Series(pd.Categorical([None] * len(index), dtype=dtype), index=index)
    # Values outside the fixed list become NaN (missing), never a new code.
    known = values.astype("object").where(values.isin(CATEGORIES[name]), None)
    return known.astype(dtype)


def featurize(frame: pd.DataFrame) -> pd.DataFrame:
    """The meta-learner's input frame (columns `FEATURE_COLUMNS`, same index) from flat records.

    Missing meta-features stay NaN. Config columns absent from `frame` are missing too.
    """
    idx = frame.index
    out: dict[str, Any] = {name: _numeric(frame, f"mf.{name}") for name in NUMERIC_FEATURES}
    for name in ("modality", "task"):
        out[name] = _categorical(frame.get(f"mf.{name}"), name, idx)

    model = frame.get("cfg.model")
    out["model"] = _categorical(model, "model", idx)
    out["family"] = _categorical(None if model is None else model.map(_FAMILY), "family", idx)
    out["params_m"] = (
        pd.Series(np.nan, index=idx) if model is None else model.map(_PARAMS_M).astype("float64")
    )
    pretrained = frame.get("cfg.pretrained")
    out["pretrained"] = (
        pd.Series(np.nan, index=idx) if pretrained is None
        else pretrained.map({True: 1.0, False: 0.0, "True": 1.0, "False": 0.0, 1: 1.0, 0: 0.0})
        .astype("float64")
    )
    out["scheme"] = _categorical(frame.get("cfg.scheme"), "scheme", idx)
    resolution = _numeric(frame, "cfg.resolution")
    out["resolution"] = resolution
    native = np.fmax(_numeric(frame, "mf.height"), _numeric(frame, "mf.width"))  # NaN only if both are
    out["resolution_ratio"] = resolution / native
    out["optimizer"] = _categorical(frame.get("cfg.optimizer"), "optimizer", idx)
    out["log10_lr"] = np.log10(_numeric(frame, "cfg.lr").where(lambda s: s > 0))
    out["log10_weight_decay"] = np.log10(_numeric(frame, "cfg.weight_decay").clip(lower=WD_FLOOR))
    out["batch_size"] = _numeric(frame, "cfg.batch_size")
    out["epochs"] = _numeric(frame, "cfg.epochs")
    aug = frame.get("cfg.augmentation")
    out["augmentation"] = (
        pd.Series(np.nan, index=idx) if aug is None else aug.map(AUGMENTATION_LEVELS).astype("float64")
    )
    out["label_smoothing"] = _numeric(frame, "cfg.label_smoothing")
    return pd.DataFrame(out, index=idx)[list(FEATURE_COLUMNS)]


def config_frame(meta: MetaFeatures, configs: Sequence[TrainConfig]) -> pd.DataFrame:
    """Flat `mf.*` + `cfg.*` rows: the dataset's meta-features repeated for every config."""
    cfg = pd.DataFrame([c.model_dump() for c in configs]).add_prefix("cfg.")
    for name, value in meta.model_dump().items():
        cfg[f"mf.{name}"] = value
    return cfg


def featurize_one(meta: MetaFeatures, configs: Sequence[TrainConfig]) -> pd.DataFrame:
    """Features of one dataset (`meta`) paired with each config (one row per config, in order)."""
    if not configs:
        return featurize(pd.DataFrame(columns=["cfg.model"]))
    return featurize(config_frame(meta, configs))


def describe_value(column: str, value: Any) -> str:
    """A short readable value for explanations ("2.9", "ResNet-18", "1e-03", "missing")."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return "missing"
    if column == "model":
        spec = MODELS.get(str(value))
        return spec.label if spec else str(value)
    if column == "pretrained":
        return "yes" if float(value) >= 0.5 else "no"
    if column in ("log10_lr", "log10_weight_decay"):
        if column == "log10_weight_decay" and float(value) <= np.log10(WD_FLOOR) + 1e-9:
            return "0"
        return f"{10 ** float(value):.0e}"
    if column == "augmentation":
        levels = {v: k for k, v in AUGMENTATION_LEVELS.items()}
        return levels.get(int(value), str(value))
    if isinstance(value, (int, np.integer)) or (isinstance(value, float) and float(value).is_integer()
                                                and abs(value) >= 10):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.3g}"
    return str(value)
