"""What the accuracy model learns from: the rows, the target, the quantiles and the weights."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

QUANTILES: tuple[float, float, float] = (0.1, 0.5, 0.9)
MEDIAN = QUANTILES.index(0.5)
MIN_ACC_RECORDS = 10
# Studies whose runs are timing evidence only: they train the CPU time model (`cputime`), not the
# accuracy model, the ranker or the evidence a pick must be backed by. `e2e-harvest`: the end-to-end
# benchmark's runs (`eval.e2e.harvest`): three seeds of each config the advisor picked and search
# trials on its held-out datasets - selection-biased as accuracy evidence (each pick weighed 3x),
# and they would let the advisor's benchmarks grade it on its own picks; their times are unbiased.
TIMING_ONLY_STUDIES: tuple[str, ...] = ("e2e-harvest:",)


def accuracy_target(frame: pd.DataFrame) -> pd.Series:
    """`out.test_acc`, falling back to `out.val_acc`; NaN where neither is known."""
    import pandas as pd

    test = pd.to_numeric(frame.get("out.test_acc", pd.Series(np.nan, index=frame.index)),
                         errors="coerce")
    val = pd.to_numeric(frame.get("out.val_acc", pd.Series(np.nan, index=frame.index)),
                        errors="coerce")
    return test.fillna(val).astype("float64")


def training_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows the accuracy model learns from: status 'ok', an accuracy known, and not a
    timing-only study (`TIMING_ONLY_STUDIES`)."""
    import pandas as pd

    if len(frame) == 0:
        return frame
    ok = frame["status"].eq("ok") if "status" in frame else pd.Series(True, index=frame.index)
    return frame[ok & ~timing_only(frame) & accuracy_target(frame).notna()]


def is_timing_only(study: str | None) -> bool:
    """Whether a run of this study is timing evidence only (`TIMING_ONLY_STUDIES`)."""
    return str(study or "").startswith(TIMING_ONLY_STUDIES)


def timing_only(frame: pd.DataFrame) -> pd.Series:
    """Per row: whether the run is timing evidence only (`TIMING_ONLY_STUDIES`)."""
    import pandas as pd

    if "prov.study" not in frame:
        return pd.Series(False, index=frame.index)
    study = frame["prov.study"].astype("string")
    return study.str.startswith(TIMING_ONLY_STUDIES).fillna(False).astype(bool)



def weight_of(source_weight: dict[str, float], source: str) -> float:
    """A source's weight (1 unless given); a user's imported run weighs as an own run unless
    `source_weight` names "user"."""
    if source == "user" and "user" not in source_weight:
        source = "own"
    return float(source_weight.get(source, 1.0))


def _weights(frame: pd.DataFrame, source_weight: dict[str, float] | None) -> np.ndarray:
    if not source_weight or "prov.source" not in frame:
        return np.ones(len(frame))
    return frame["prov.source"].map(lambda s: weight_of(source_weight, s)).to_numpy("float64")
