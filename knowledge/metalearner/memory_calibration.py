"""Calibration of the peak-memory model on our own CPU runs (`calibrate_cpu`; the module doc of
`knowledge.metalearner.memory` explains the fit):

    python -m knowledge.metalearner.memory calibrate
"""

from __future__ import annotations

from typing import Any

from knowledge.metalearner.memory import ACT_FACTOR, MB, estimate_peak
from knowledge.paths import PACKAGE_DATA


def calibrate_cpu(frame: Any = None) -> dict[str, Any]:
    """Least-squares fit of the CPU peak RSS of our own runs:

        peak_mb = baseline + d * dataset_mb + s * states_mb + k * activation_mb(fp32, factor 1)

    (`states`: weights + gradients + optimizer state). Returns the coefficients, the implied
    activation factor `k`, and the fit error (median absolute / relative, RMSE) of this fit and
    of the fixed-constant model (baseline + dataset + states + ACT_FACTOR x activations)."""
    import numpy as np
    import pandas as pd

    if frame is None:
        frame = pd.read_parquet(PACKAGE_DATA / "meta_dataset.parquet")
    cols = ["cfg.model", "cfg.resolution", "cfg.batch_size", "cfg.scheme", "cfg.optimizer",
            "out.peak_memory_mb", "mf.n_instances", "mf.height", "mf.width"]
    d = frame[[c for c in cols if c in frame.columns]].dropna(subset=["out.peak_memory_mb"])
    d = d[d["cfg.scheme"].isin(["end_to_end", "linear_probing"])]
    states, acts, data = [], [], []
    for r in d.itertuples(index=False):
        model, res, batch, scheme, opt = r[0], int(r[1]), int(r[2]), r[3], r[4]
        e = estimate_peak(model=model, resolution=res, batch_size=batch, amp=False, scheme=scheme,
                          optimizer=opt, overhead_mb=0.0, act_factor=1.0, use_calibration=False)
        states.append(e.weights_mb + e.gradients_mb + e.optimizer_mb)
        acts.append(e.activations_mb)
        # every split in memory as uint8 (N, 3, H, W) at the stored size: ~ n_instances / 0.7
        n = float(r[6]) / 0.7 if r[6] == r[6] else 0.0
        side = float(r[7]) if r[7] == r[7] else 64.0
        data.append(n * 3 * side * side / MB)
    y = d["out.peak_memory_mb"].to_numpy(dtype=float)
    X = np.column_stack([np.ones_like(y), data, states, acts])
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    fitted = X @ coef
    fixed_resid = y - (np.column_stack([data, states, acts]) @ np.array([1.0, 1.0, ACT_FACTOR]))
    base = float(np.median(fixed_resid))
    fixed = base + np.column_stack([data, states, acts]) @ np.array([1.0, 1.0, ACT_FACTOR])

    def err(pred: np.ndarray) -> dict[str, float]:
        return {"median_abs_mb": round(float(np.median(np.abs(y - pred))), 1),
                "median_rel": round(float(np.median(np.abs(y - pred) / y)), 3),
                "rmse_mb": round(float(np.sqrt(np.mean((y - pred) ** 2))), 1)}

    return {
        "n": len(y),
        "peak_mb_range": [round(float(y.min()), 1), round(float(y.max()), 1)],
        "activation_mb_range": [round(float(min(acts)), 1), round(float(max(acts)), 1)],
        "fit": {"baseline_mb": round(float(coef[0]), 1), "dataset": round(float(coef[1]), 3),
                "states": round(float(coef[2]), 3), "act_factor": round(float(coef[3]), 2)},
        "fit_error": err(fitted),
        "fixed_model": {"baseline_mb": round(base, 1), "act_factor": ACT_FACTOR},
        "fixed_model_error": err(fixed),
        "baseline_only_error": err(np.full_like(y, np.median(y))),
    }
