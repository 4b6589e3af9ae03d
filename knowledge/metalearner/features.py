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

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from knowledge.metafeatures import FEATURE_LABELS as MF_LABELS
from knowledge.metafeatures import MODALITIES, NUMERIC_FEATURES, TASK_TYPES, MetaFeatures
from knowledge.search_space import MODELS, SCHEMES, SPACE, TrainConfig

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")

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
    "log10_steps",
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
    "log10_steps": "optimizer steps (log10: epochs x images / batch)",
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
    "epochs": ("epochs", "log10_steps"),
}
GROUP_LABELS: dict[str, str] = {
    "model": "model",
    "resolution": "input resolution",
    "image size": "native image size",
    "class sizes": "images per class",
    "epochs": "epochs",
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
    import pandas as pd

    if column not in frame:
        return pd.Series(np.nan, index=frame.index, dtype="float64")
    return pd.to_numeric(frame[column], errors="coerce").astype("float64")


def _categorical(values: pd.Series | None, name: str, index: pd.Index) -> pd.Series:
    import pandas as pd

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
    import pandas as pd

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
        else pretrained.map({True: 1.0, False: 0.0, "True": 1.0, "False": 0.0})  # 1 and 0 hash as True and False
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
    out["log10_steps"] = pd.Series(log10_steps(out["epochs"], _numeric(frame, "mf.n_instances"),
                                               out["batch_size"]), index=idx)
    aug = frame.get("cfg.augmentation")
    out["augmentation"] = (
        pd.Series(np.nan, index=idx) if aug is None else aug.map(AUGMENTATION_LEVELS).astype("float64")
    )
    out["label_smoothing"] = _numeric(frame, "cfg.label_smoothing")
    return pd.DataFrame(out, index=idx)[list(FEATURE_COLUMNS)]


def log10_steps(epochs: Any, n_instances: Any, batch_size: Any) -> Any:
    """log10 of the optimizer steps a run takes (epochs x training images / batch size; NaN where
    the image count is unknown). How far training gets depends on the updates, not the epochs
    alone: one epoch of 12,000 images is 190 steps at batch 64, eight epochs of 546 images are 70,
    so this is what lets runs on small datasets inform the training length on large ones."""
    return np.log10(np.asarray(epochs, dtype="float64") * np.asarray(n_instances, dtype="float64")
                    / np.asarray(batch_size, dtype="float64"))


def to_matrix(features: pd.DataFrame) -> np.ndarray:
    """A float64 array of a `featurize` frame (same columns): categorical columns become their
    category codes (NaN where missing), what XGBoost sees for `enable_categorical=True`."""
    import pandas as pd

    columns = []
    for name in features.columns:
        col = features[name]
        if isinstance(col.dtype, pd.CategoricalDtype):
            codes = col.cat.codes.to_numpy().astype("float64")
            codes[codes < 0] = np.nan
            columns.append(codes)
        else:
            columns.append(col.to_numpy(dtype="float64", na_value=np.nan))
    if not columns:
        return np.zeros((len(features), 0))
    return np.column_stack(columns)


def _code(name: str, value: Any) -> float:
    return float(CATEGORIES[name].index(value)) if value in CATEGORIES[name] else np.nan


_PER_LIST: dict[tuple[str, tuple[int, ...]], tuple[tuple[Any, ...], Any]] = {}
_PER_LIST_MAX = 32


def cached_per_list(items: Sequence[Any], kind: str, build: Callable[[tuple[Any, ...]], T]) -> T:
    """`build(tuple(items))`, cached by the identity of the items (hashing a few thousand frozen
    pydantic configs costs more than the work saved). An entry keeps its items alive, so while it
    exists no other object can have their ids: equal id tuples mean the very same items."""
    items = tuple(items)
    key = (kind, tuple(map(id, items)))
    hit = _PER_LIST.get(key)
    if hit is not None:
        return hit[1]
    if len(_PER_LIST) >= _PER_LIST_MAX:
        _PER_LIST.pop(next(iter(_PER_LIST)))
    value = build(items)
    _PER_LIST[key] = (items, value)
    return value


def _config_block(configs: Sequence[TrainConfig]) -> np.ndarray:
    """The config columns (`CONFIG_FEATURES` order) of configs, resolution_ratio left NaN.

    Cached per candidate list: the ranking path builds it once per process."""
    return cached_per_list(configs, "config_block", _build_config_block)


def _build_config_block(configs: tuple[TrainConfig, ...]) -> np.ndarray:
    rows = []
    for c in configs:
        spec = MODELS.get(c.model)
        rows.append((
            _code("model", c.model), _code("family", spec.family if spec else None),
            spec.params_m if spec else np.nan, 1.0 if c.pretrained else 0.0,
            _code("scheme", c.scheme), float(c.resolution), np.nan, _code("optimizer", c.optimizer),
            np.log10(c.lr) if c.lr > 0 else np.nan, np.log10(max(c.weight_decay, WD_FLOOR)),
            float(c.batch_size), float(c.epochs), np.nan, float(AUGMENTATION_LEVELS.get(c.augmentation, np.nan)),
            float(c.label_smoothing),
        ))
    block = np.array(rows, dtype="float64").reshape(len(configs), len(CONFIG_FEATURES))
    block.setflags(write=False)
    return block


def candidate_matrix(meta: MetaFeatures, configs: Sequence[TrainConfig]) -> np.ndarray:
    """`to_matrix(featurize_one(meta, configs))` without pandas: the ranking's fast path (the
    config part is cached per candidate list, the dataset's columns are broadcast)."""
    block = _config_block(configs)
    values = meta.model_dump()
    head = [np.nan if values.get(n) is None else float(values[n]) for n in NUMERIC_FEATURES]
    head += [_code("modality", values.get("modality")), _code("task", values.get("task"))]
    M = np.empty((len(configs), len(FEATURE_COLUMNS)))
    M[:, :len(head)] = head
    M[:, len(head):] = block
    native = np.fmax(M[:, FEATURE_COLUMNS.index("height")], M[:, FEATURE_COLUMNS.index("width")])
    ratio = FEATURE_COLUMNS.index("resolution_ratio")
    M[:, ratio] = M[:, FEATURE_COLUMNS.index("resolution")] / native
    M[:, FEATURE_COLUMNS.index("log10_steps")] = log10_steps(
        M[:, FEATURE_COLUMNS.index("epochs")], M[:, FEATURE_COLUMNS.index("n_instances")],
        M[:, FEATURE_COLUMNS.index("batch_size")])
    return M


def decode_row(row: np.ndarray) -> dict[str, Any]:
    """One `to_matrix` / `candidate_matrix` row as {column: value}, category codes back to their
    names (None where missing): the values `describe_value` reads."""
    out: dict[str, Any] = {}
    for name, value in zip(FEATURE_COLUMNS, row):
        if name in CATEGORIES:
            out[name] = None if np.isnan(value) else CATEGORIES[name][int(value)]
        else:
            out[name] = float(value)
    return out


def config_frame(meta: MetaFeatures, configs: Sequence[TrainConfig]) -> pd.DataFrame:
    """Flat `mf.*` + `cfg.*` rows: the dataset's meta-features repeated for every config."""
    import pandas as pd

    cfg = pd.DataFrame([c.model_dump() for c in configs]).add_prefix("cfg.")
    for name, value in meta.model_dump().items():
        cfg[f"mf.{name}"] = value
    return cfg


def featurize_one(meta: MetaFeatures, configs: Sequence[TrainConfig]) -> pd.DataFrame:
    """Features of one dataset (`meta`) paired with each config (one row per config, in order)."""
    import pandas as pd

    if not configs:
        return featurize(pd.DataFrame(columns=["cfg.model"]))
    return featurize(config_frame(meta, configs))


def describe_value(column: str, value: Any) -> str:
    """A short readable value for explanations ("2.9", "ResNet-18", "1e-03", "missing")."""
    if value is None or (isinstance(value, float) and np.isnan(value)) or (
            type(value).__name__ == "NAType"):  # pandas.NA, without importing pandas
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
