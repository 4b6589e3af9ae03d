"""SHAP explanations of the accuracy model: additivity, readable factors, plots."""

from __future__ import annotations

import pytest

from knowledge.explain import Explanation, explain, global_importance, plot_importance, plot_waterfall
from knowledge.metafeatures import from_traits
from knowledge.metalearner.features import FEATURE_COLUMNS, FEATURE_LABELS, GROUP_LABELS, featurize_one
from knowledge.metalearner.model import ACC_PARAMS, MetaLearner
from knowledge.search_space import TrainConfig
from tests.knowledge.synthetic_runs import synthetic_frame

META = from_traits(n_instances=1500, n_classes=3, imbalance_ratio=2.9, height=128, modality="ct")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def frame():
    return synthetic_frame()


@pytest.fixture(scope="module")
def learner(frame) -> MetaLearner:
    return MetaLearner(acc_params=dict(ACC_PARAMS, n_estimators=80, n_jobs=1)).fit(frame)


@pytest.mark.parametrize("top_n", [3, 6, None])
def test_factors_sum_to_prediction_minus_base(learner: MetaLearner, top_n: int | None) -> None:
    config = TrainConfig(model="resnet18", pretrained=False, resolution=64, epochs=10)
    expl = explain(learner, META, config, top_n=top_n)
    total = sum(f.contribution_points for f in expl.factors)
    assert total == pytest.approx(expl.prediction - expl.base_value, abs=1e-3)
    # the explained value is the ranking's prediction (median, in points)
    predicted = learner.predict(featurize_one(META, [config]))["acc"].iloc[0] * 100
    assert expl.prediction == pytest.approx(predicted, abs=1e-3)
    if top_n is not None:
        assert len(expl.factors) == top_n + 1 and expl.factors[-1].feature == "other"
        shown = expl.factors[:-1]
    else:
        assert all(f.feature != "other" for f in expl.factors)
        shown = expl.factors
    sizes = [abs(f.contribution_points) for f in shown]
    assert sizes == sorted(sizes, reverse=True)


def test_factors_are_readable_and_grouped(learner: MetaLearner) -> None:
    expl = explain(learner, META, TrainConfig(model="resnet18", pretrained=False), top_n=None)
    readable = set(FEATURE_LABELS.values()) | set(GROUP_LABELS.values())
    assert all(f.label in readable for f in expl.factors)
    features = {f.feature for f in expl.factors}
    assert "model" in features and "family" not in features and "params_m" not in features
    assert len(expl.factors) < len(FEATURE_COLUMNS)
    by_name = {f.feature: f for f in expl.factors}
    assert by_name["model"].value_text == "ResNet-18"
    assert by_name["imbalance_ratio"].value_text == "2.9"
    assert by_name["pretrained"].value_text == "no"
    # the synthetic signal: training from scratch costs a lot of accuracy
    assert by_name["pretrained"].contribution_points < -5
    assert expl.factors[0].feature == "pretrained"
    text = by_name["pretrained"].text
    assert text.startswith("ImageNet-pretrained weights no \u2192 \u2212") and text.endswith(" points")
    assert "predicted accuracy" in expl.text()
    assert isinstance(Explanation.model_validate_json(expl.model_dump_json()), Explanation)


def test_global_importance(learner: MetaLearner, frame) -> None:
    importance = global_importance(learner, frame)
    assert list(importance.columns) == ["feature", "label", "mean_abs_points"]
    values = importance["mean_abs_points"].tolist()
    assert values == sorted(values, reverse=True) and min(values) >= 0
    assert importance["feature"].iloc[0] == "pretrained"


def test_plots_are_written(tmp_path, learner: MetaLearner, frame) -> None:
    expl = explain(learner, META, TrainConfig(model="efficientnet_lite0"))
    waterfall = plot_waterfall(expl, tmp_path / "plots" / "why.png")
    bars = plot_importance(global_importance(learner, frame), tmp_path / "importance.png")
    for path in (waterfall, bars):
        data = path.read_bytes()
        assert data.startswith(PNG) and len(data) > 5000
