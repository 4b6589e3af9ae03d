"""Why the meta-learner predicts what it does: SHAP values (exact TreeSHAP) of the accuracy model.

    expl = explain(learner, meta, config)        # one prediction, in accuracy points
    print(expl.factors[0].text)                  # "class imbalance (largest/smallest) 2.9 -> -1.2 points"
    plot_waterfall(expl, "why.png")
    plot_importance(global_importance(learner, frame), "importance.png")

SHAP values are computed for the median (0.5-quantile) output of the quantile model, in accuracy
percentage points. Related feature columns are summed into one readable factor (`FEATURE_GROUPS`:
model / family / size -> "model", resolution / ratio -> "input resolution", ...); SHAP values are
additive, so the factors still sum exactly to prediction - base value. When `top_n` cuts the list,
the rest is one "other factors" entry, so that sum always holds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from knowledge.errors import StoreError
from knowledge.metafeatures import MetaFeatures
from knowledge.metalearner.features import (
    FEATURE_COLUMNS,
    FEATURE_GROUPS,
    FEATURE_LABELS,
    GROUP_LABELS,
    candidate_matrix,
    decode_row,
    describe_value,
    featurize,
    group_of,
    to_matrix,
)
from knowledge.metalearner.model import MEDIAN, MetaLearner
from knowledge.search_space import TrainConfig

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

FOREST_SHAP_MAX_ROWS = 16  # up to this many rows, SHAP values come from the NumPy forest


class Factor(BaseModel):
    """One feature (or group of related columns) and its contribution to the prediction."""

    model_config = ConfigDict(extra="forbid")

    feature: str = Field(description="feature column or group name, e.g. 'imbalance_ratio', 'model'")
    label: str = Field(description="readable name")
    value_text: str = Field(description="its value for this dataset/config, readable")
    contribution_points: float = Field(description="SHAP value, accuracy percentage points")

    @property
    def text(self) -> str:
        """'class imbalance (largest/smallest) 2.9 -> -1.2 points' (with a real arrow and minus)."""
        sign = "+" if self.contribution_points >= 0 else "\u2212"
        value = f" {self.value_text}" if self.value_text else ""
        return f"{self.label}{value} \u2192 {sign}{abs(self.contribution_points):.1f} points"


class Explanation(BaseModel):
    """A prediction split into factors: prediction = base_value + sum(contribution_points)."""

    model_config = ConfigDict(extra="forbid")

    config: TrainConfig
    base_value: float = Field(description="average prediction over the training runs, accuracy %")
    prediction: float = Field(description="the model's median prediction for this config, accuracy %")
    factors: list[Factor] = Field(description="sorted by |contribution|, largest first")

    def text(self) -> str:
        """A few readable lines: the prediction, the base value and each factor."""
        lines = [f"predicted accuracy {self.prediction:.1f} % "
                 f"(average over past runs {self.base_value:.1f} %):"]
        lines += [f"  {f.text}" for f in self.factors]
        return "\n".join(lines)


def shap_values(learner: MetaLearner, features: pd.DataFrame) -> tuple[np.ndarray, float]:
    """SHAP values of the median output, (n_rows, n_features) in points, and the base value (%).

    Exact path-dependent TreeSHAP, the values of `shap.TreeExplainer` (interventional=False):
    for a few rows from the learner's NumPy forest (`Forest.contributions`, no xgboost import),
    for more rows from XGBoost's own `Booster.predict(..., pred_contribs=True)` (vectorised in
    C++); both are checked against each other and against shap in the tests. The bias column is
    the base value.
    """
    _check_fitted(learner)
    X = features[list(FEATURE_COLUMNS)]
    if len(X) <= FOREST_SHAP_MAX_ROWS:
        return shap_matrix(learner, to_matrix(X))
    import xgboost as xgb

    contribs = np.asarray(learner.acc_model.get_booster().predict(
        xgb.DMatrix(X, enable_categorical=True), pred_contribs=True), dtype="float64")
    if contribs.ndim == 3:  # (rows, quantiles, features + bias)
        contribs = contribs[:, MEDIAN, :]
    return _split(contribs)


def shap_matrix(learner: MetaLearner, matrix: np.ndarray) -> tuple[np.ndarray, float]:
    """`shap_values` of `to_matrix` rows, from the learner's NumPy forest (no xgboost, no pandas)."""
    _check_fitted(learner)
    forest = learner.forest("acc")
    assert forest is not None
    contribs = np.array([forest.contributions(row, target=MEDIAN) for row in matrix],
                        dtype="float64").reshape(len(matrix), len(FEATURE_COLUMNS) + 1)
    return _split(contribs)


def _check_fitted(learner: MetaLearner) -> None:
    if not learner.fitted:
        raise StoreError("the meta-learner is not fitted (run `metallmix fit`)")


def _split(contribs: np.ndarray) -> tuple[np.ndarray, float]:
    """(values in points, base value in %) of (rows, features + bias) contributions."""
    values, bias = contribs[:, :-1], contribs[:, -1]
    base = float(bias[0]) if len(bias) else math.nan
    return values * 100.0, base * 100.0


def _group_value(group: str, row: Mapping[str, Any]) -> str:
    if group == "model":
        return describe_value("model", row["model"])
    if group == "resolution":
        text = f"{describe_value('resolution', row['resolution'])} px"
        ratio = row["resolution_ratio"]
        missing = ratio is None or (isinstance(ratio, float) and math.isnan(ratio))
        return text if missing else f"{text} ({ratio:.2g} of native)"
    if group == "image size":
        return f"{describe_value('height', row['height'])} \u00d7 {describe_value('width', row['width'])}"
    if group == "class sizes":
        return f"mean {describe_value('class_size_mean', row['class_size_mean'])}"
    if group == "epochs":
        text = describe_value("epochs", row["epochs"])
        steps = row.get("log10_steps")
        missing = steps is None or (isinstance(steps, float) and math.isnan(steps))
        return text if missing else f"{text} ({10 ** float(steps):,.0f} optimizer steps)"
    return describe_value(group, row[group])


def _grouped(values: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {}
    for column, value in zip(FEATURE_COLUMNS, values):
        group = group_of(column)
        out[group] = out.get(group, 0.0) + float(value)
    return out


def _label(group: str) -> str:
    return GROUP_LABELS.get(group) or FEATURE_LABELS.get(group, group)


def explain(learner: MetaLearner, meta: MetaFeatures, config: TrainConfig,
            top_n: int | None = 6) -> Explanation:
    """Why `learner` predicts its accuracy for `config` on the dataset `meta` (top_n factors,
    plus an "other factors" remainder; None = every factor)."""
    matrix = candidate_matrix(meta, [config])
    values, base = shap_matrix(learner, matrix)
    row = decode_row(matrix[0])
    groups = _grouped(values[0])
    factors = [
        Factor(feature=g, label=_label(g), value_text=_group_value(g, row), contribution_points=v)
        for g, v in groups.items()
    ]
    factors.sort(key=lambda f: abs(f.contribution_points), reverse=True)
    if top_n is not None and len(factors) > top_n:
        rest = factors[top_n:]
        factors = factors[:top_n] + [Factor(
            feature="other", label=f"{len(rest)} other factors", value_text="",
            contribution_points=float(sum(f.contribution_points for f in rest)),
        )]
    return Explanation(config=config, base_value=base,
                       prediction=base + float(values[0].sum()), factors=factors)


def global_importance(learner: MetaLearner, frame: pd.DataFrame, *, max_rows: int = 2000,
                      seed: int = 0) -> pd.DataFrame:
    """Mean |SHAP| per factor (grouped) over `frame` (flat records or a `featurize` frame), in
    points, largest first: columns feature, label, mean_abs_points."""
    import pandas as pd

    features = frame if set(FEATURE_COLUMNS) <= set(frame.columns) else featurize(frame)
    if len(features) > max_rows:
        features = features.sample(max_rows, random_state=seed)
    values, _ = shap_values(learner, features)
    per_column = pd.DataFrame(values, columns=list(FEATURE_COLUMNS))
    grouped = per_column.T.groupby([group_of(c) for c in FEATURE_COLUMNS]).sum().T
    importance = grouped.abs().mean().sort_values(ascending=False)
    return pd.DataFrame({
        "feature": importance.index,
        "label": [_label(g) for g in importance.index],
        "mean_abs_points": importance.to_numpy(),
    }).reset_index(drop=True)


def _save(fig: Any, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def plot_waterfall(expl: Explanation, path: str | Path) -> Path:
    """A SHAP waterfall plot of the explanation's factors, written as PNG; returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    values = np.array([f.contribution_points for f in expl.factors])
    shap.plots.waterfall(
        shap.Explanation(
            values=values,
            base_values=expl.base_value,
            data=np.array([f.value_text for f in expl.factors], dtype=object),
            feature_names=[f.label for f in expl.factors],
        ),
        max_display=len(values) + 1,
        show=False,
    )
    fig = plt.gcf()
    c = expl.config
    fig.suptitle(f"{c.spec.label} ({c.scheme}, {c.resolution} px): predicted accuracy "
                 f"{expl.prediction:.1f} % (contributions in points)", fontsize=10)
    return _save(fig, path)


def plot_importance(importance: pd.DataFrame, path: str | Path, *, top_n: int = 15) -> Path:
    """A horizontal bar chart of `global_importance` (mean |SHAP|, points) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = importance.head(top_n).iloc[::-1]
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(top) + 1.2))
    ax.barh(top["label"], top["mean_abs_points"], color="#3b7dd8")
    ax.set_xlabel("mean |SHAP value| (accuracy points)")
    ax.set_title("What drives the predicted accuracy")
    fig.tight_layout()
    return _save(fig, path)


__all__ = [
    "Explanation",
    "FEATURE_GROUPS",
    "Factor",
    "explain",
    "global_importance",
    "plot_importance",
    "plot_waterfall",
    "shap_matrix",
    "shap_values",
]
