"""How the recommendation says configs, times, budgets and values in words (`config_label`,
`budget_text_of`, and the card's percentage / time / number formats)."""

from __future__ import annotations

from typing import Any

from knowledge.metalearner.budget import Budget, format_seconds
from knowledge.metalearner.ranking import RankedConfig
from knowledge.search_space import TrainConfig


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def _time(r: RankedConfig) -> str:
    text = format_seconds(r.predicted_seconds)
    return text + (" (rough)" if r.time_is_estimate and r.predicted_seconds is not None else "")


def config_label(r: RankedConfig | TrainConfig) -> str:
    """'ResNet-18, pretrained, end_to_end, 64 px, lr 1e-04, 10 ep' (of a ranked config or a config)."""
    c = r.config if isinstance(r, RankedConfig) else r
    return (f"{c.spec.label}, {'pretrained' if c.pretrained else 'from scratch'}, {c.scheme}, "
            f"{c.resolution} px, lr {c.lr:.0e}, {c.epochs} ep")


def budget_text_of(budget: Budget | None) -> str:
    """'1 h on NVIDIA T4', 'no budget'."""
    return budget.describe() if budget is not None else "no budget"


def _value(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _whole(x: float) -> float | int:
    return int(x) if float(x).is_integer() else x
