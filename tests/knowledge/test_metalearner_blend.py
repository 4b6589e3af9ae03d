"""The ranking blend: within-task helpers, the cross-validated choice of the weight, and the
learner's ranking score."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from knowledge.metalearner.blend import (
    BLEND_GRID,
    blend_score,
    choose_blend,
    spread,
    task_ids,
    task_regrets,
    within_task_norm,
)
from knowledge.metalearner.features import featurize, to_matrix
from knowledge.metalearner.model import ACC_PARAMS, MetaLearner
from tests.knowledge.synthetic_runs import synthetic_frame

FAST = dict(ACC_PARAMS, n_estimators=30, n_jobs=1)
TASKS = np.array(["a"] * 5 + ["b"] * 5)
Y = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 0.1, 0.2, 0.3, 0.4, 0.5])


def test_task_ids_and_within_task_normalisation() -> None:
    rows = pd.DataFrame({"dataset_id": ["d1", "d1", "d2"], "prov.source": ["own", "published", "own"]})
    assert task_ids(rows).tolist() == ["d1|own", "d1|published", "d2|own"]
    assert task_ids(pd.DataFrame({"base_dataset": ["x"]})).tolist() == ["x|own"]
    norm = within_task_norm(Y, TASKS)
    np.testing.assert_allclose(norm, [0, .25, .5, .75, 1] * 2)
    assert within_task_norm(np.array([0.3, 0.3]), np.array(["t", "t"])).tolist() == [0.5, 0.5]
    assert spread(Y, TASKS) == pytest.approx(np.std([0.5, 0.6, 0.7, 0.8, 0.9]))
    assert spread(np.ones(4), np.array(["t"] * 4)) == 1.0  # nothing varies: a neutral scale


def test_task_regrets_normalise_by_the_task_range() -> None:
    # task a: the top score is the 0.7 run (regret (0.9-0.7)/0.4); task b: the best run
    score = np.array([0, 0, 9, 0, 0, 0, 0, 0, 0, 9], dtype=float)
    assert task_regrets(Y, score, TASKS) == pytest.approx([0.5, 0.0])
    assert task_regrets(Y[:4], score[:4], TASKS[:4]) == []  # fewer than 5 runs: not scored


def test_blend_score_is_the_documented_mix() -> None:
    acc, ranker = np.array([0.8, 0.7]), np.array([-1.0, 2.0])
    np.testing.assert_allclose(blend_score(acc, ranker, 0.0, 0.1, 2.0), acc / 0.1)
    np.testing.assert_allclose(blend_score(acc, ranker, 0.5, 0.1, 2.0),
                               0.5 * acc / 0.1 + 0.5 * ranker / 2.0)
    np.testing.assert_allclose(blend_score(acc, None, 0.5, 0.1, 2.0), acc / 0.1)


def test_choose_blend_follows_the_held_out_regret() -> None:
    good, bad = Y.copy(), -Y  # a model that ranks right, one that ranks backwards
    ranker_wins = [(Y, bad, good, TASKS, 1.0, 1.0)]
    weight, means = choose_blend(ranker_wins)
    assert set(means) == {str(w) for w in BLEND_GRID}
    assert means["0.0"] == 1.0 and means["0.75"] == means["1.0"] == 0.0
    assert weight == 0.75  # the smallest weight at which the ranker's order wins
    assert choose_blend([(Y, good, bad, TASKS, 1.0, 1.0)])[0] == 0.0
    assert choose_blend([(Y, good, good, TASKS, 1.0, 1.0)])[0] == 0.0  # a tie: the smaller weight


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_frame()


def test_fit_chooses_the_weight_by_grouped_cv(frame: pd.DataFrame) -> None:
    learner = MetaLearner(acc_params=FAST, rank_params=FAST).fit(frame, calibrate=False)
    assert learner.blend in BLEND_GRID and set(learner.blend_cv) == {str(w) for w in BLEND_GRID}
    assert learner.blend_cv[str(learner.blend)] == min(learner.blend_cv.values())
    assert learner.has_model("rank") and learner.acc_spread > 0 and learner.rank_spread > 0
    pred = learner.predict(featurize(frame))
    M = to_matrix(featurize(frame))
    expected = blend_score(learner.forest("acc").predict(M, target=1),
                           learner.forest("rank").predict(M), learner.blend, learner.acc_spread,
                           learner.rank_spread)
    np.testing.assert_allclose(pred["score"], expected)


def test_a_fixed_weight_and_too_few_groups(frame: pd.DataFrame) -> None:
    fixed = MetaLearner(acc_params=FAST, rank_params=FAST).fit(frame, calibrate=False, blend=0.25)
    assert fixed.blend == 0.25 and fixed.blend_cv == {}
    two = frame[frame["base_dataset"].isin(["alpha", "beta"])]
    alone = MetaLearner(acc_params=FAST, rank_params=FAST).fit(two, calibrate=False)
    assert alone.blend == 0.0 and alone.blend_cv == {}  # nothing to validate on: accuracy alone
    pred = alone.predict(featurize(two))
    np.testing.assert_allclose(pred["score"], pred["acc"] / alone.acc_spread, rtol=1e-9, atol=1e-6)
