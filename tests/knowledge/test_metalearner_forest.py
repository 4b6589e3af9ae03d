"""The NumPy forest: the same predictions and SHAP values as XGBoost, and a recommendation path
that never imports xgboost, scikit-learn, pandas or FAISS."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from knowledge.metafeatures import from_traits
from knowledge.metalearner import artifact
from knowledge.metalearner.candidates import candidate_configs
from knowledge.metalearner.cputime import THREADS, cost_frame, cost_inputs
from knowledge.metalearner.features import (
    CATEGORIES,
    FEATURE_COLUMNS,
    candidate_matrix,
    featurize,
    featurize_one,
    to_matrix,
)
from knowledge.metalearner.forest import Forest, load_forests, save_forests
from knowledge.metalearner.model import (
    ACC_PARAMS,
    MEDIAN,
    MetaLearner,
    cost_prior_shape,
)
from tests.knowledge.synthetic_runs import synthetic_frame

FAST = dict(ACC_PARAMS, n_estimators=40, n_jobs=1)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_frame()


@pytest.fixture(scope="module")
def learner(frame: pd.DataFrame) -> MetaLearner:
    return MetaLearner(acc_params=FAST, rank_params=FAST).fit(frame, calibrate=False)


@pytest.fixture(scope="module")
def features(frame: pd.DataFrame) -> pd.DataFrame:
    """The training features with holes: missing values and unknown categories everywhere."""
    X = featurize(frame).reset_index(drop=True)
    rng = np.random.default_rng(0)
    holes = rng.random(X.shape) < 0.2
    for j, name in enumerate(X.columns):
        if isinstance(X[name].dtype, pd.CategoricalDtype):
            X[name] = X[name].mask(holes[:, j])
        else:
            X.loc[holes[:, j], name] = np.nan
    return X


def test_predictions_equal_xgboost(learner: MetaLearner, features: pd.DataFrame) -> None:
    M = to_matrix(features)
    np.testing.assert_allclose(learner.forest("acc").predict(M),
                               learner.acc_model.predict(features), atol=2e-6)
    np.testing.assert_allclose(learner.forest("rank").predict(M),
                               learner.rank_model.predict(features), atol=2e-6)
    margin = cost_prior_shape(features) + learner.cost_c0
    threads = np.where(np.arange(len(features)) % 2 == 0, 1.0, 2.0)  # the cost model's last input
    cost_forest = learner.forest("cost")
    assert cost_forest.feature_names[-1] == THREADS
    np.testing.assert_allclose(
        cost_forest.predict(cost_inputs(M, threads, cost_forest.feature_names), base_margin=margin),
        learner.cost_model.predict(cost_frame(features, threads), base_margin=margin),
        rtol=1e-5)  # log-seconds around -8: XGBoost adds up in float32


def test_categorical_splits_follow_xgboost_on_every_code(learner: MetaLearner) -> None:
    # one row per model code (and a missing one): categorical splits route exactly as XGBoost
    meta = from_traits(n_instances=900, n_classes=4, height=64, modality="ct")
    X = featurize_one(meta, candidate_configs()[:len(CATEGORIES["model"]) + 1]).reset_index(drop=True)
    X["model"] = pd.Categorical([*CATEGORIES["model"], None][:len(X)], dtype=X["model"].dtype)
    np.testing.assert_allclose(learner.forest("acc").predict(to_matrix(X)),
                               learner.acc_model.predict(X), atol=2e-6)


def test_treeshap_equals_xgboost_contributions(learner: MetaLearner,
                                               features: pd.DataFrame) -> None:
    import xgboost as xgb

    rows = features.iloc[:12]
    reference = learner.acc_model.get_booster().predict(
        xgb.DMatrix(rows, enable_categorical=True), pred_contribs=True)[:, MEDIAN, :]
    forest = learner.forest("acc")
    mine = np.array([forest.contributions(r, target=MEDIAN) for r in to_matrix(rows)])
    np.testing.assert_allclose(mine, reference, atol=1e-6)
    # additive: the contributions sum to the median prediction
    np.testing.assert_allclose(mine.sum(axis=1), forest.predict(to_matrix(rows), target=MEDIAN),
                               atol=1e-6)


def test_forests_round_trip_through_npz(tmp_path, learner: MetaLearner,
                                        features: pd.DataFrame) -> None:
    path = tmp_path / "forests.npz"
    save_forests(path, learner.forests)
    loaded = load_forests(path)
    assert set(loaded) == {"acc", "rank", "cost"}
    M = to_matrix(features)
    for name in ("acc", "rank"):
        np.testing.assert_array_equal(loaded[name].predict(M), learner.forest(name).predict(M))
    assert loaded["acc"].feature_names == list(FEATURE_COLUMNS)


def test_candidate_matrix_equals_featurize(learner: MetaLearner) -> None:
    configs = candidate_configs()
    for meta in (from_traits(n_classes=3),
                 from_traits(n_instances=500, n_classes=2, imbalance_ratio=4.0, height=28, width=40,
                             modality="x-ray", channels=1)):
        np.testing.assert_array_equal(candidate_matrix(meta, configs),
                                      to_matrix(featurize_one(meta, configs)))


def test_bad_input_shape_is_an_error(learner: MetaLearner) -> None:
    with pytest.raises(ValueError, match="feature columns"):
        learner.forest("acc").predict(np.zeros((2, 3)))


def test_forest_from_booster_accepts_the_sklearn_wrapper(learner: MetaLearner) -> None:
    forest = Forest.from_booster(learner.acc_model)
    assert forest.n_targets == 3 and forest.depth <= FAST["max_depth"]


def test_recommending_from_an_artifact_imports_no_heavy_library(tmp_path, learner, frame) -> None:
    path = artifact.save(learner, tmp_path / "ml")
    assert (path / artifact.FOREST_FILE).is_file()
    script = f"""
import json, sys
from knowledge.explain import explain
from knowledge.metafeatures import from_traits
from knowledge.metalearner import artifact
from knowledge.metalearner.budget import parse_budget
from knowledge.metalearner.ranking import rank
learner = artifact.load({str(path)!r})
meta = from_traits(n_instances=3000, n_classes=3, height=512, modality="x-ray")
top = rank(meta, learner, top_k=3, budget=parse_budget("CPU only"))
why = explain(learner, meta, top[0].config)
heavy = [m for m in ("xgboost", "sklearn", "scipy", "pandas", "faiss", "torch", "shap")
         if m in sys.modules]
print(json.dumps({{"heavy": heavy, "acc": top[0].predicted_acc, "why": why.prediction}}))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["heavy"] == []
    assert result["why"] == pytest.approx(100 * result["acc"], abs=1e-3)
