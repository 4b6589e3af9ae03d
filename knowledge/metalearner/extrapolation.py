"""The training evidence of a fitted learner (config values seen, numeric ranges seen) and the
candidates that extrapolate beyond it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

# Config fields whose training evidence is recorded: the set of values seen (categorical) or the
# [min, max] range seen (numeric). Candidates outside it are extrapolations (see `extrapolated`).
EVIDENCE_CATEGORICAL: tuple[str, ...] = ("model", "pretrained", "scheme", "optimizer", "augmentation")
EVIDENCE_NUMERIC: tuple[str, ...] = ("resolution", "lr", "weight_decay", "batch_size", "epochs",
                                     "label_smoothing")


def _as_float(values: Any) -> np.ndarray:
    """Numbers as float64, anything unreadable as NaN (as `pd.to_numeric(errors="coerce")`)."""
    try:
        return np.asarray(values, dtype="float64")
    except (TypeError, ValueError):
        import pandas as pd

        return pd.to_numeric(pd.Series(np.asarray(values, dtype=object)),
                             errors="coerce").to_numpy("float64")



def config_evidence(rows: pd.DataFrame) -> dict[str, list[Any]]:
    """Values seen per config field (categorical) and [min, max] seen (numeric) in `rows`."""
    import pandas as pd

    out: dict[str, list[Any]] = {}
    for name in EVIDENCE_CATEGORICAL:
        if f"cfg.{name}" in rows:
            values = rows[f"cfg.{name}"].dropna().unique().tolist()
            out[name] = sorted((v.item() if hasattr(v, "item") else v) for v in values)
    for name in EVIDENCE_NUMERIC:
        if f"cfg.{name}" in rows:
            v = pd.to_numeric(rows[f"cfg.{name}"], errors="coerce").dropna()
            if len(v):
                out[name] = [float(v.min()), float(v.max())]
    return out



def extrapolation_flags(evidence: Mapping[str, list[Any]], configs: pd.DataFrame | Mapping[str, Any]
                        ) -> tuple[list[str], np.ndarray]:
    """Per row of a `cfg.*` frame (or a mapping of `cfg.*` columns to arrays), which config fields
    lie outside `evidence` (`config_evidence`): (field names, bool matrix rows x fields)."""
    flags: dict[str, np.ndarray] = {}
    n_rows = len(configs) if hasattr(configs, "columns") else len(
        next(iter(configs.values()), []))
    for name in EVIDENCE_CATEGORICAL:
        seen = evidence.get(name)
        if seen is not None and f"cfg.{name}" in configs:
            values = np.asarray(configs[f"cfg.{name}"], dtype=object)
            flags[name] = ~np.isin(values, np.asarray(seen, dtype=object))
    for name in EVIDENCE_NUMERIC:
        seen = evidence.get(name)
        if seen is not None and f"cfg.{name}" in configs:
            v = _as_float(configs[f"cfg.{name}"])
            flags[name] = (v < seen[0] - 1e-12) | (v > seen[1] + 1e-12)
    names = list(flags)
    if not names:
        return [], np.zeros((n_rows, 0), dtype=bool)
    return names, np.column_stack([flags[n] for n in names])


def flag_names(names: list[str], matrix: np.ndarray, rows: Iterable[int]) -> list[list[str]]:
    """The flagged field names of some rows of an `extrapolation_flags` matrix."""
    return [[names[j] for j in np.flatnonzero(matrix[i])] for i in rows]

