"""The app's tables and plots: the traits table (both ways, traits named in words), the similar
runs, the Pareto plot."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import pandas as pd

from knowledge.recommend import TRAIT_KEYS

TRAIT_COLUMNS = ["trait", "value", "source"]
RUN_COLUMNS = ["dataset", "model", "scheme", "px", "test acc %", "similarity", "source"]


def _empty_runs() -> pd.DataFrame:
    return pd.DataFrame(columns=RUN_COLUMNS)


# What the traits table calls each trait (in words; the raw keys are for developers: see
# `trait_keys_markdown`), in the order it lists them.
TRAIT_LABELS: dict[str, str] = {
    "n_instances": "images (training set)",
    "n_classes": "classes",
    "class_size_max": "largest class (images)",
    "class_size_min": "smallest class (images)",
    "class_counts": "images in each class",
    "imbalance_ratio": "class balance (largest ÷ smallest)",
    "class_entropy": "class balance (entropy, bits)",
    "class_size_mean": "images per class (mean)",
    "class_size_std": "images per class (spread)",
    "height": "image height (px)",
    "width": "image width (px)",
    "channels": "channels (1 gray, 3 colour)",
    "modality": "modality (x-ray, CT, ...)",
    "task": "task (binary, multi-class, ...)",
}


def _trait_keys() -> list[str]:
    """Every trait key, in the table's order (a key without a label last, as itself)."""
    return [k for k in TRAIT_LABELS if k in TRAIT_KEYS] + [k for k in TRAIT_KEYS if k not in TRAIT_LABELS]


def trait_label(key: str) -> str:
    """A trait in words ('smallest class (images)' for 'class_size_min'); unknown keys as they are."""
    return TRAIT_LABELS.get(key, key)


def trait_key(name: str) -> str:
    """The trait key of a label in the table; a raw key (or anything else) as it is."""
    name = name.strip()
    return next((k for k, label in TRAIT_LABELS.items() if label == name), name)


def trait_keys_markdown() -> str:
    """The table's labels beside the raw trait keys (for developers: the --traits JSON, the API)."""
    return "\n".join(["| trait | key |", "|---|---|",
                      *(f"| {trait_label(k)} | `{k}` |" for k in _trait_keys())])


def trait_rows(traits: dict[str, Any]) -> pd.DataFrame:
    """Every trait as a row, named in words (`TRAIT_LABELS`): value ('' when unknown) and where it
    came from. `traits`: the graph's {name: {"value", "source"}} or plain {name: value}."""
    rows = []
    for key in _trait_keys():
        item = traits.get(key)
        if isinstance(item, dict) and "value" in item:
            value, source = item["value"], item.get("source", "")
        else:
            value, source = item, ("measured" if item is not None else "")
        text = "" if value is None else (value if isinstance(value, str) else json.dumps(value))
        rows.append([trait_label(key), text, source])
    return pd.DataFrame(rows, columns=TRAIT_COLUMNS)


def traits_from_rows(rows: Any) -> dict[str, Any]:
    """The edited traits table back to {trait key: value}: a row names its trait in words (the
    table's label) or by its key; blank cells are dropped, numbers and lists are read as JSON,
    anything else is kept as text."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows, columns=TRAIT_COLUMNS)
    out: dict[str, Any] = {}
    for key, value in zip(frame.iloc[:, 0], frame.iloc[:, 1]):
        if value is None or (isinstance(value, float) and pd.isna(value)):
            continue
        text = str(value).strip()
        if not key or not text:
            continue
        try:
            out[trait_key(str(key))] = json.loads(text)
        except ValueError:
            out[trait_key(str(key))] = text
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
