"""The CPU time model's training threads (`knowledge.metalearner.cputime`): a run recorded on two
threads teaches the model what the second thread buys, per architecture."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from knowledge.metafeatures import from_traits
from knowledge.metalearner import artifact
from knowledge.metalearner.budget import Budget, parse_budget
from knowledge.metalearner.cputime import (
    ASSUMED_THREADS,
    COST_FEATURES,
    THREADS,
    cost_inputs,
    thread_column,
)
from knowledge.metalearner.features import FEATURE_COLUMNS, candidate_matrix, featurize_one
from knowledge.metalearner.model import ACC_PARAMS, MetaLearner, log_cost_target
from knowledge.metalearner.ranking import score_candidates
from knowledge.metalearner.targets import timing_only, training_rows
from knowledge.search_space import TrainConfig
from tests.knowledge.synthetic_runs import synthetic_frame

FAST = dict(ACC_PARAMS, n_estimators=80, n_jobs=1)
# what a second thread buys in this synthetic frame (on the 2-core machine the fitted model says
# ResNet-18 ~1.3x, EfficientNet-Lite0 ~1.15x)
SPEEDUP = {"resnet18": 1.6, "mobilenetv3_small_100": 1.0, "efficientnet_lite0": 1.0}


def _with_two_thread_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """The timed own runs again, recorded on 2 threads, ResNet-18 1.6x faster."""
    timed = frame[frame["out.train_seconds"].notna()].copy()
    timed["run_id"] = timed["run_id"] + "-2t"
    timed["prov.threads"] = 2
    timed["out.train_seconds"] = timed["out.train_seconds"] / timed["cfg.model"].map(SPEEDUP)
    return pd.concat([frame.assign(**{"prov.threads": np.nan}), timed], ignore_index=True)


@pytest.fixture(scope="module")
def learner() -> MetaLearner:
    return MetaLearner(acc_params=FAST).fit(_with_two_thread_runs(synthetic_frame()), calibrate=False)


def _per_img(learner: MetaLearner, model: str, threads: int | None) -> float:
    meta = from_traits(n_instances=1000, n_classes=2, height=64)
    M = candidate_matrix(meta, [TrainConfig(model=model, resolution=64)])
    return float(learner.predict_matrix(M, intervals=False, threads=threads)["sec_per_img_epoch"][0])


def test_thread_column_reads_prov_threads_and_assumes_one_where_missing() -> None:
    frame = pd.DataFrame({"prov.threads": [2, None, 8]})
    assert thread_column(frame).tolist() == [2.0, ASSUMED_THREADS, 8.0]
    assert thread_column(pd.DataFrame(index=[0, 1])).tolist() == [1.0, 1.0]  # no column at all


def test_the_cost_model_learns_what_a_second_thread_buys_per_model(learner: MetaLearner) -> None:
    assert THREADS in learner.forest("cost").feature_names
    resnet = _per_img(learner, "resnet18", 1) / _per_img(learner, "resnet18", 2)
    effnet = _per_img(learner, "efficientnet_lite0", 1) / _per_img(learner, "efficientnet_lite0", 2)
    assert 1.35 < resnet < 1.85, resnet
    assert 0.85 < effnet < 1.15, effnet
    # no thread count: the 1-thread times the campaign recorded
    assert _per_img(learner, "resnet18", None) == pytest.approx(_per_img(learner, "resnet18", 1))


def test_an_artifact_keeps_the_thread_input(learner: MetaLearner, tmp_path) -> None:
    artifact.save(learner, tmp_path / "m")
    loaded = artifact.load(tmp_path / "m")
    assert _per_img(loaded, "resnet18", 2) == pytest.approx(_per_img(learner, "resnet18", 2), rel=1e-5)


def test_a_cost_forest_fitted_without_threads_gets_no_thread_column() -> None:
    M = np.zeros((3, len(FEATURE_COLUMNS)))
    old = cost_inputs(M, 2, list(COST_FEATURES))
    new = cost_inputs(M, 2, [*COST_FEATURES, THREADS])
    assert old.shape == (3, len(COST_FEATURES)) and new.shape == (3, len(COST_FEATURES) + 1)
    assert (new[:, -1] == 2).all() and (cost_inputs(M, None, [THREADS])[:, -1] == ASSUMED_THREADS).all()


def test_a_cpu_budget_predicts_for_the_threads_training_will_use(learner: MetaLearner, monkeypatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert parse_budget("CPU only, 1 hour").cpu_threads == 2  # all cores, as the launcher trains
    assert Budget(device="cpu", threads=1).cpu_threads == 1
    assert parse_budget("one hour on a T4").cpu_threads is None
    meta = from_traits(n_instances=1000, n_classes=2, height=64)
    configs = [TrainConfig(model="resnet18", resolution=64)]
    two = score_candidates(meta, learner, budget=Budget(device="cpu", threads=2), candidates=configs)
    one = score_candidates(meta, learner, budget=Budget(device="cpu", threads=1), candidates=configs)
    assert 1.35 < one.seconds[0] / two.seconds[0] < 1.85
    assert featurize_one(meta, configs).shape[1] == len(FEATURE_COLUMNS)  # not an accuracy feature


def test_harvested_benchmark_runs_train_the_time_model_only() -> None:
    frame = _with_two_thread_runs(synthetic_frame())
    harvested = frame["prov.threads"].eq(2)
    frame.loc[harvested, "prov.study"] = "e2e-harvest:synthetic:tpe-s0"
    assert timing_only(frame).tolist() == harvested.tolist()
    rows = training_rows(frame)
    assert not rows["prov.study"].astype("string").str.startswith("e2e-harvest:").fillna(False).any()
    assert len(rows) == len(training_rows(frame[~harvested]))  # the accuracy side is unchanged
    learner = MetaLearner(acc_params=FAST).fit(frame, calibrate=False)
    assert learner.n_timed == int(log_cost_target(frame).notna().sum())  # the time side reads them
    assert learner.n_timed > int(log_cost_target(frame[~harvested]).notna().sum())


# --- the validation pass ------------------------------------------------------------------------

def test_the_time_target_discounts_each_epochs_validation_pass() -> None:
    from knowledge.metalearner.cputime import VAL_COST

    frame = pd.DataFrame({"status": ["ok", "ok", "ok"], "out.train_seconds": [10.0, 10.0, 10.0],
                          "out.epochs_completed": [2, 2, 2], "mf.n_instances": [300, 300, 300],
                          "out.val_images": [np.nan, 0, 6491], "prov.device": ["AMD EPYC"] * 3})
    per = np.exp(log_cost_target(frame))
    assert per[0] == pytest.approx(10 / (2 * 300)) == per[1]  # not recorded: as before
    # a subsampled variant with its source's whole validation split: most of the time is validation
    assert per[2] == pytest.approx(10 / (2 * (300 + VAL_COST * 6491)))
    assert per[2] < per[0] / 4


def test_a_learner_fitted_to_another_time_target_is_refitted(learner: MetaLearner) -> None:
    meta = artifact.metadata(learner)
    assert artifact.incompatibility(meta) is None
    older = {k: v for k, v in meta.items() if k != "cost_target"}  # before the discount existed
    assert "another target" in artifact.incompatibility(older)
