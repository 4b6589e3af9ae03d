"""The app's tables and plots: the traits table (both ways), the similar runs, the Pareto plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import pandas as pd

TRAIT_COLUMNS = ["trait", "value", "source"]
RUN_COLUMNS = ["dataset", "model", "scheme", "px", "test acc %", "similarity", "source"]


def _empty_runs() -> pd.DataFrame:
    return pd.DataFrame(columns=RUN_COLUMNS)


def trait_rows(traits: dict[str, Any]) -> pd.DataFrame:
    """Every trait key as a row: value ('' when unknown) and where it came from.
    `traits`: the graph's {name: {"value", "source"}} or plain {name: value}."""
    from knowledge.recommend import TRAIT_KEYS

    rows = []
    for key in TRAIT_KEYS:
        item = traits.get(key)
        if isinstance(item, dict) and "value" in item:
            value, source = item["value"], item.get("source", "")
        else:
            value, source = item, ("measured" if item is not None else "")
        text = "" if value is None else (value if isinstance(value, str) else json.dumps(value))
        rows.append([key, text, source])
    return pd.DataFrame(rows, columns=TRAIT_COLUMNS)


def traits_from_rows(rows: Any) -> dict[str, Any]:
    """The edited traits table back to {trait: value}: blank cells are dropped, numbers and lists
    are read as JSON, anything else is kept as text."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=TRAIT_COLUMNS)
    out: dict[str, Any] = {}
    for key, value in zip(frame.iloc[:, 0], frame.iloc[:, 1]):
        if value is None or (isinstance(value, float) and pd.isna(value)):
            continue
        text = str(value).strip()
        if not key or not text:
            continue
        try:
            out[str(key)] = json.loads(text)
        except ValueError:
            out[str(key)] = text
    return out


def runs_table(rec: Any) -> pd.DataFrame:
    """The similar past runs of a Recommendation as a table."""
    rows = [[h.base_dataset, h.model, h.scheme, h.resolution,
             None if h.test_acc is None else round(100 * h.test_acc, 1), round(h.score, 2), h.source]
            for h in rec.similar_runs]
    return pd.DataFrame(rows, columns=RUN_COLUMNS) if rows else _empty_runs()


def plot_pareto(rec: Any, path: str | Path) -> Optional[Path]:
    """Predicted accuracy vs predicted time of the top configs, the Pareto front highlighted and the
    pick starred, as PNG; None when no config has a predicted time."""
    timed = [r for r in rec.top if r.predicted_seconds is not None]
    front = [r for r in rec.pareto if r.predicted_seconds is not None]
    if not timed and not front:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.scatter([r.predicted_seconds / 60 for r in timed], [100 * r.predicted_acc for r in timed],
               color="0.6", label="top configs")
    if front:
        ax.plot([r.predicted_seconds / 60 for r in front], [100 * r.predicted_acc for r in front],
                "o-", color="tab:red", label="Pareto front")
    best = rec.best
    if best.predicted_seconds is not None:
        ax.scatter([best.predicted_seconds / 60], [100 * best.predicted_acc], marker="*", s=250,
                   color="tab:blue", zorder=5, label=f"pick: {best.config.spec.label}")
    ax.set_xscale("log")
    ax.set_xlabel(f"predicted training time (min, {best.device})")
    ax.set_ylabel("predicted test accuracy (%)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
