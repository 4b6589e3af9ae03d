"""The meta-learner: features, fit/predict, cost model, artifact round trip, published-data CV."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from knowledge.errors import StoreError
from knowledge.metafeatures import MetaFeatures, from_traits
from knowledge.metalearner import artifact
from knowledge.metalearner.features import (
    CATEGORIES,
    FEATURE_COLUMNS,
    FEATURE_LABELS,
    WD_FLOOR,
    featurize,
    featurize_one,
)
from knowledge.metalearner.model import ACC_PARAMS, MetaLearner, grouped_cv, training_rows
from knowledge.runs.record import record_to_row
from knowledge.runs.store import RunStore
from knowledge.search_space import TrainConfig
from tests.helpers import shared_file
from tests.knowledge.synthetic_runs import (
    TIMED,
    synthetic_frame,
    synthetic_records,
    true_sec_per_img_epoch,
)

FAST = dict(ACC_PARAMS, n_estimators=80, n_jobs=1)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_frame()


@pytest.fixture(scope="module")
def learner(frame: pd.DataFrame) -> MetaLearner:
    return MetaLearner(acc_params=FAST).fit(frame)


# --- features ------------------------------------------------------------------------------
def test_featurize_shape_dtypes_and_labels(frame: pd.DataFrame) -> None:
    X = featurize(frame)
    assert list(X.columns) == list(FEATURE_COLUMNS)
    assert len(X) == len(frame) and (X.index == frame.index).all()
    for name in CATEGORIES:
        assert isinstance(X[name].dtype, pd.CategoricalDtype)
        assert list(X[name].cat.categories) == CATEGORIES[name]
    assert set(FEATURE_LABELS) == set(FEATURE_COLUMNS)
    assert all(label and "." not in label[:3] for label in FEATURE_LABELS.values())
    # log scales and the weight-decay floor
    assert np.allclose(10 ** X["log10_lr"], frame["cfg.lr"])
    zero_wd = frame["cfg.weight_decay"] == 0
    assert zero_wd.any() and (X.loc[zero_wd, "log10_weight_decay"] == math.log10(WD_FLOOR)).all()
    assert np.allclose(X["resolution_ratio"], frame["cfg.resolution"] / frame["mf.height"])


def test_featurize_keeps_missing_values_missing() -> None:
    meta = from_traits(n_classes=3)  # almost everything unknown
    X = featurize_one(meta, [TrainConfig(model="resnet18"), TrainConfig(model="vgg16", epochs=5)])
    assert X.shape == (2, len(FEATURE_COLUMNS))
    assert X["n_classes"].tolist() == [3.0, 3.0]
    for name in ("n_instances", "imbalance_ratio", "height", "resolution_ratio"):
        assert X[name].isna().all()
    assert X["modality"].isna().all()
    assert X["model"].astype(str).tolist() == ["resnet18", "vgg16"]
    assert X["params_m"].tolist() == [11.7, 138.4]


def test_unknown_category_becomes_missing_not_a_new_code() -> None:
    flat = pd.DataFrame({"cfg.model": ["resnet18", "no-such-model"], "mf.modality": ["ct", "?"]})
    X = featurize(flat)
    assert X["model"].isna().tolist() == [False, True]
    assert X["modality"].isna().tolist() == [False, True]


def test_featurize_one_matches_featurize_of_records(frame: pd.DataFrame) -> None:
    records = synthetic_records(per_dataset=5)
    meta = records[0].meta_features
    same = [r for r in records if r.meta_features == meta]
    expected = featurize(pd.DataFrame([record_to_row(r) for r in same])).reset_index(drop=True)
    got = featurize_one(meta, [r.config for r in same])
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


# --- fit / predict -------------------------------------------------------------------------
def test_fit_uses_ok_rows_and_val_fallback(frame: pd.DataFrame, learner: MetaLearner) -> None:
    rows = training_rows(frame)
    assert (rows["status"] == "ok").all()
    assert rows["out.test_acc"].isna().sum() > 0  # val_acc-only rows are kept
    assert sum(learner.n_records.values()) == len(rows)
    assert set(learner.n_records) == {"own", "published"}


def test_recovers_pretrained_signal(learner: MetaLearner) -> None:
    meta = from_traits(n_instances=2000, n_classes=3, height=128, modality="ct")
    configs = [TrainConfig(model=m, pretrained=p, resolution=64, epochs=10)
               for m in ("resnet18", "resnet50", "efficientnet_lite0") for p in (True, False)]
    pred = learner.predict(featurize_one(meta, configs))
    pretrained = pred["acc"].to_numpy()[0::2]
    scratch = pred["acc"].to_numpy()[1::2]
    assert (pretrained - scratch > 0.15).all(), pred


def test_quantiles_are_ordered(learner: MetaLearner, frame: pd.DataFrame) -> None:
    pred = learner.predict(featurize(frame))
    assert list(pred.columns) == ["acc", "acc_lo", "acc_hi", "sec_per_img_epoch", "time_is_estimate",
                                  "score"]
    assert (pred["acc_lo"] <= pred["acc"]).all() and (pred["acc"] <= pred["acc_hi"]).all()
    assert pred[["acc", "acc_lo", "acc_hi"]].stack().between(0, 1).all()
    assert learner.interval_margin >= 0


def test_cost_model_matches_timings_and_flags_untimed_models(learner: MetaLearner) -> None:
    assert learner.n_timed >= 10 and learner.cost_model is not None
    assert set(learner.timed_models) == set(TIMED)
    assert math.isclose(learner.cost_c0, math.log(2e-4), abs_tol=0.1)
    meta = from_traits(n_instances=1000, n_classes=2, height=64)
    configs = [TrainConfig(model=m, resolution=r) for m in ("resnet18", "resnet50") for r in (28, 128)]
    pred = learner.predict(featurize_one(meta, configs))
    assert pred["time_is_estimate"].tolist() == [False, False, True, True]
    truth = [true_sec_per_img_epoch(c.model, c.resolution, c.scheme) for c in configs]
    ratio = pred["sec_per_img_epoch"].to_numpy() / np.array(truth)
    assert ((ratio > 1 / 1.5) & (ratio < 1.5)).all(), ratio
    # the prior scales with resolution for a model never timed
    assert pred["sec_per_img_epoch"].iloc[3] > 10 * pred["sec_per_img_epoch"].iloc[2]


def test_without_timed_runs_the_prior_gives_flagged_times(frame: pd.DataFrame) -> None:
    untimed = frame.assign(**{"out.train_seconds": np.nan})
    learner = MetaLearner(acc_params=FAST).fit(untimed, calibrate=False)
    assert learner.cost_model is None and learner.n_timed == 0
    pred = learner.predict_frame(frame.head(5))
    assert pred["time_is_estimate"].all() and (pred["sec_per_img_epoch"] > 0).all()


def test_gpu_timed_runs_are_not_cost_targets(frame: pd.DataFrame) -> None:
    on_gpu = frame.assign(**{"prov.device": "NVIDIA H100 80GB HBM3"})
    learner = MetaLearner(acc_params=FAST).fit(on_gpu, calibrate=False)
    assert learner.n_timed == 0


def test_source_weight_changes_the_fit(frame: pd.DataFrame, learner: MetaLearner) -> None:
    weighted = MetaLearner(acc_params=FAST).fit(frame, source_weight={"own": 5.0, "published": 0.2})
    X = featurize(frame)
    assert weighted.source_weight == {"own": 5.0, "published": 0.2}
    assert not np.allclose(weighted.predict(X)["acc"], learner.predict(X)["acc"])


def test_too_few_records_is_a_clear_error(frame: pd.DataFrame) -> None:
    with pytest.raises(StoreError, match="at least 10"):
        MetaLearner().fit(frame.head(5))
    with pytest.raises(StoreError, match="not fitted"):
        MetaLearner().predict(featurize(frame.head(2)))


def test_grouped_cv_on_synthetic(frame: pd.DataFrame) -> None:
    cv = grouped_cv(frame, n_splits=3, acc_params=FAST, calibrate=False)
    assert cv.n_folds == 3 and cv.n_records == len(training_rows(frame))
    assert cv.mae < 5.0  # points; the signal is strong and the noise 1 point
    assert cv.spearman > 0.8
    assert 0 <= cv.coverage <= 1 and set(cv.per_group_mae) == set(frame["base_dataset"])


# --- artifact ------------------------------------------------------------------------------
def test_artifact_round_trip_gives_identical_predictions(tmp_path, frame, learner) -> None:
    learner.data_hash = artifact.data_hash(frame)
    path = artifact.save(learner, tmp_path / "ml")
    meta = json.loads((path / "metadata.json").read_text())
    for key in ("format_version", "package_version", "code_version", "fitted_at", "n_records",
                "feature_columns", "categories", "data_hash"):
        assert key in meta
    assert (path / "accuracy.ubj").stat().st_size > 0 and (path / "cost.ubj").exists()
    loaded = artifact.load(path)
    X = featurize(frame)
    pd.testing.assert_frame_equal(loaded.predict(X), learner.predict(X))
    assert loaded.evidence == learner.evidence
    assert artifact.is_stale(frame, path) is None
    assert artifact.is_stale(frame.iloc[1:], path) == "the training data changed"
    # saving again replaces the directory atomically (no leftovers)
    artifact.save(learner, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ml"]


def test_data_hash_ignores_row_order(frame: pd.DataFrame) -> None:
    assert artifact.data_hash(frame) == artifact.data_hash(frame.sample(frac=1, random_state=1))
    changed = frame.copy()
    changed.loc[changed.index[0], "out.test_acc"] = 0.123
    assert artifact.data_hash(changed) != artifact.data_hash(frame)


def test_load_errors_are_one_line(tmp_path, learner) -> None:
    with pytest.raises(StoreError, match="no meta-learner artifact"):
        artifact.load(tmp_path / "none")
    path = artifact.save(learner, tmp_path / "ml")
    meta = json.loads((path / "metadata.json").read_text())
    (path / "metadata.json").write_text(json.dumps(dict(meta, format_version=999)))
    with pytest.raises(StoreError, match="incompatible"):
        artifact.load(path)
    # fitted before timing-only studies existed: its accuracy model may have learnt from them
    (path / "metadata.json").write_text(json.dumps({k: v for k, v in meta.items()
                                                    if k != "timing_only_studies"}))
    with pytest.raises(StoreError, match="incompatible: it was fitted with other timing-only studies"):
        artifact.load(path)
    # fitted with the code's defaults of an older version (e.g. one tree per round): refit ...
    older = dict(meta["acc_params"], num_parallel_tree=1, n_estimators=7)
    (path / "metadata.json").write_text(json.dumps(dict(meta, acc_params=older, default_params=True)))
    with pytest.raises(StoreError, match="incompatible: it was fitted with older default settings"):
        artifact.load(path)
    (path / "metadata.json").write_text(json.dumps({k: (older if k == "acc_params" else v)
                                                    for k, v in meta.items() if k != "default_params"}))
    with pytest.raises(StoreError, match="older default settings"):
        artifact.load(path)  # an artifact from before the marker counts as fitted with defaults
    # ... but one fitted with settings of the user's own choice is kept
    (path / "metadata.json").write_text(json.dumps(dict(meta, acc_params=older, default_params=False)))
    assert artifact.load(path).fitted


def test_load_or_fit_refits_only_when_stale(tmp_path, monkeypatch) -> None:
    from knowledge.metalearner import model

    monkeypatch.setattr(model, "ACC_PARAMS", FAST)  # fewer trees: the same logic, faster
    store = RunStore(tmp_path / "runs.sqlite")
    records = synthetic_records(per_dataset=16, seed=1)
    store.add_many(records[:-8])
    first = artifact.load_or_fit(store)  # default dir: the isolated METALLMIX_HOME
    assert (artifact.default_dir() / "metadata.json").exists()
    again = artifact.load_or_fit(store)
    assert again.fitted_at == first.fitted_at and again.data_hash == first.data_hash
    store.add_many(records[-8:])
    refit = artifact.load_or_fit(store)
    assert refit.data_hash != first.data_hash
    assert artifact.read_metadata()["data_hash"] == refit.data_hash


# --- the real published records (skipped without ../shared) ----------------------------------
@pytest.mark.slow
def test_grouped_cv_on_published_medmnist_plus() -> None:
    from knowledge.meta_dataset import load_medmnist_plus

    results = shared_file("medmnist_plus", "results.csv")
    counts = shared_file("medmnist_class_counts.csv")
    published = pd.DataFrame([record_to_row(r) for r in load_medmnist_plus(results, counts)])
    cv = grouped_cv(published, n_splits=3, calibrate=False)
    print(f"MedMNIST+ grouped 3-fold CV: MAE {cv.mae:.2f} points (config-mean baseline "
          f"{cv.baseline_mae:.2f}), spearman {cv.spearman:.3f}, top-1 regret {cv.regret:.2f} points")
    assert cv.n_records == 1440 and cv.n_folds == 3
    assert cv.mae < 20 and cv.spearman > 0.6 and cv.regret < 5


def test_metafeatures_model_is_unchanged() -> None:
    # featurize relies on these field names; a rename must fail loudly here
    assert {"n_instances", "modality", "task", "height", "width"} <= set(MetaFeatures.model_fields)
