"""The MedMNIST+ import: the real published table (skips without ../shared) and a tiny hand-written one."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from knowledge.errors import DatasetError
from knowledge.meta_dataset import average_check, import_medmnist_plus, load_medmnist_plus
from knowledge.meta_dataset import medmnist_plus as mp
from knowledge.search_space import MODELS, SPACE, validate_config
from tests.helpers import shared_file

HEADER = "dataset,scheme,model,resolution,acc_mean,acc_std,auc_mean,auc_std\n"
TINY = HEADER + (
    "bloodmnist,end_to_end,VGG16,28,94.85,0.47,99.66,0.06\n"
    "bloodmnist,knn,AlexNet,64,80.10,,,\n"
    "chestmnist,linear_probing,EVA-02 ViT-B/16,224,94.80,0.01,75.00,0.20\n"
    "octmnist,end_to_end,SAM ViT-B/16,128,70.00,1.50,90.00,0.50\n"
)
COUNTS = (
    "dataset,split,class_index,class_name,count,status,provenance\n"
    "breastmnist,train,0,malignant,147,verified,x\n"
    "breastmnist,train,1,normal/benign,399,verified,x\n"
    "octmnist,train,0,cnv,,missing,none\n"
    "octmnist,train,1,dme,,missing,none\n"
    "octmnist,train,2,drusen,,missing,none\n"
    "octmnist,train,3,normal,,missing,none\n"
)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _store_class():
    if importlib.util.find_spec("knowledge.runs.store") is None:
        pytest.skip("knowledge.runs.store (RunStore) is not written yet")
    from knowledge.runs.store import RunStore

    return RunStore


@pytest.fixture(scope="module")
def real_records() -> list:
    results = shared_file("medmnist_plus", "results.csv")
    counts = shared_file("medmnist_class_counts.csv")
    return load_medmnist_plus(results, counts)


def _find(records, dataset, scheme, model, resolution):
    (hit,) = [r for r in records if r.base_dataset == dataset and r.config.scheme == scheme
              and r.config.model == model and r.config.resolution == resolution]
    return hit


# --- the real published table ------------------------------------------------------------------
def test_real_table_has_1440_valid_unique_records(real_records) -> None:
    assert len(real_records) == 1440
    assert len({r.run_id for r in real_records}) == 1440
    for r in real_records:
        assert validate_config(r.config, SPACE) == r.config
        assert r.provenance.source == "published" and r.status == "ok"
        assert r.meta_features.height == r.meta_features.width == 224
    assert {r.config.model for r in real_records} == set(mp.MODEL_NAMES.values())
    assert {r.base_dataset for r in real_records} == set(mp.MEDMNIST_2D)


def test_known_row_bloodmnist_vgg16(real_records) -> None:
    r = _find(real_records, "bloodmnist", "end_to_end", "vgg16", 28)
    assert r.dataset_id == "medmnist:bloodmnist" and r.variant is None and r.medical
    assert r.outcome.test_acc == pytest.approx(0.9485, abs=1e-9)
    assert r.outcome.test_acc_std == pytest.approx(0.0047, abs=1e-9)
    assert r.outcome.test_auc == pytest.approx(0.9966, abs=1e-9)
    assert r.outcome.test_auc_std == pytest.approx(0.0006, abs=1e-9)
    assert r.outcome.n_seeds == 3
    assert (r.config.epochs, r.config.lr, r.config.batch_size) == (100, 1e-4, 64)
    assert (r.config.optimizer, r.config.weight_decay, r.config.augmentation) == ("adamw", 0.01, "none")
    assert r.meta_features.n_instances == 11959 and r.meta_features.n_classes == 8
    assert r.meta_features.imbalance_ratio is not None and r.meta_features.modality == "microscopy"


def test_knn_has_no_auc_and_chest_is_multilabel(real_records) -> None:
    knn = [r for r in real_records if r.config.scheme == "knn"]
    assert len(knn) == 480
    assert all(r.outcome.test_auc is None and r.outcome.test_auc_std is None for r in knn)
    assert all(r.outcome.test_acc is not None for r in knn)
    chest = [r for r in real_records if r.base_dataset == "chestmnist"]
    assert chest and all(r.meta_features.task == "multi-label" for r in chest)
    mf = chest[0].meta_features
    assert mf.n_instances == 78468 and mf.n_classes == 14 and mf.imbalance_ratio is not None


def test_missing_counts_leave_class_balance_missing(real_records) -> None:
    oct_ = _find(real_records, "octmnist", "end_to_end", "resnet18", 28).meta_features
    assert oct_.imbalance_ratio is None and oct_.class_entropy is None
    assert oct_.class_size_std is None and oct_.class_size_min is None
    assert oct_.class_size_max is None
    assert oct_.class_size_mean == pytest.approx(97477 / 4, abs=1e-3)


def test_run_ids_stable_across_loads(real_records) -> None:
    again = load_medmnist_plus(shared_file("medmnist_plus", "results.csv"),
                               shared_file("medmnist_class_counts.csv"))
    assert [r.run_id for r in again] == [r.run_id for r in real_records]
    assert again == real_records


def test_average_table_matches(real_records) -> None:
    diff = average_check(real_records, shared_file("medmnist_plus", "average_table.csv"))
    assert diff <= 0.011


def test_alexnet_is_kept_but_untrainable(real_records) -> None:
    assert mp.untrainable_counts(real_records) == {"alexnet": 144}
    assert not MODELS["alexnet"].trainable


def test_real_import_twice_adds_nothing(tmp_path: Path) -> None:
    store = _store_class()(tmp_path / "runs.sqlite")
    results = shared_file("medmnist_plus", "results.csv")
    assert import_medmnist_plus(store, results) == 1440
    assert import_medmnist_plus(store, results) == 0
    assert len(store) == 1440


# --- a tiny hand-written table (always runs) ---------------------------------------------------
def test_tiny_table(tmp_path: Path) -> None:
    results = _write(tmp_path, "results.csv", TINY)
    counts = _write(tmp_path, "counts.csv", COUNTS)
    records = load_medmnist_plus(results, counts)
    assert len(records) == 4
    blood, knn, chest, oct_ = records
    assert blood.outcome.test_acc == pytest.approx(0.9485) and blood.outcome.test_auc == pytest.approx(0.9966)
    assert knn.config.model == "alexnet" and knn.config.scheme == "knn"
    assert knn.outcome.test_auc is None and knn.outcome.test_acc_std is None
    assert chest.meta_features.task == "multi-label"
    assert chest.config.model == "eva02_base_patch16_clip_224"
    # blood/chest not in this counts file, oct missing: no class balance anywhere
    assert all(r.meta_features.imbalance_ratio is None for r in records)
    assert oct_.meta_features.class_size_mean == pytest.approx(97477 / 4, abs=1e-3)
    assert blood.run_id == mp.RunRecord.stable_id("medmnist+", "bloodmnist", "end_to_end", "VGG16", 28)
    assert load_medmnist_plus(results, counts) == records


def test_verified_counts_give_class_balance(tmp_path: Path) -> None:
    results = _write(tmp_path, "results.csv", HEADER + "breastmnist,end_to_end,ResNet-18,64,85,1,90,1\n")
    mf = load_medmnist_plus(results, _write(tmp_path, "c.csv", COUNTS))[0].meta_features
    assert mf.n_instances == 546 and mf.n_classes == 2 and mf.task == "binary"
    assert mf.imbalance_ratio == pytest.approx(399 / 147, abs=1e-3)
    assert (mf.class_size_min, mf.class_size_max) == (147.0, 399.0)
    assert mf.channels == 1 and mf.modality == "ultrasound"


def test_counts_that_do_not_sum_to_the_split_are_rejected(tmp_path: Path) -> None:
    results = _write(tmp_path, "results.csv", HEADER + "breastmnist,end_to_end,ResNet-18,64,85,1,90,1\n")
    bad = _write(tmp_path, "c.csv", COUNTS.replace(",147,", ",140,"))
    with pytest.raises(DatasetError, match="breastmnist.*546"):
        load_medmnist_plus(results, bad)


def test_tiny_import_twice_adds_nothing(tmp_path: Path) -> None:
    store = _store_class()(tmp_path / "runs.sqlite")
    results = _write(tmp_path, "results.csv", TINY)
    assert import_medmnist_plus(store, results, _write(tmp_path, "c.csv", COUNTS)) == 4
    assert import_medmnist_plus(store, results, tmp_path / "c.csv") == 0
    assert len(store) == 4


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        (TINY.replace("auc_mean,", ""), r"missing column\(s\) auc_mean"),
        (TINY.replace("94.85", "94,85"), r"line 2: 9 cells, but the header has 8"),
        (TINY.replace("80.10,,,", "80.10,,"), r"line 3: 7 cells, but the header has 8"),
        (TINY.replace("94.85", "9x.85"), r"line 2, column 'acc_mean': '9x.85' is not a number"),
        (TINY.replace("VGG16", "VGG-19"), r"line 2, column 'model': unknown model 'VGG-19'"),
        (TINY.replace("octmnist", "octomnist"), r"line 5, column 'dataset': unknown dataset"),
        (TINY.replace(",128,", ",96,"), r"line 5, column 'resolution'"),
        (TINY.replace("knn", "svm"), r"line 3, column 'scheme'"),
        (TINY.replace("70.00", "170.00"), r"line 5, column 'acc_mean': 170.00 is outside"),
        (TINY + "bloodmnist,end_to_end,VGG16,28,1,1,1,1\n", r"line 6 repeats line 2"),
        (HEADER, r"no result rows"),
    ],
)
def test_malformed_csv_names_file_row_and_column(tmp_path: Path, text: str, pattern: str) -> None:
    path = _write(tmp_path, "bad.csv", text)
    with pytest.raises(DatasetError) as info:
        load_medmnist_plus(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert re.search(pattern, message), message


def test_missing_file_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        load_medmnist_plus(tmp_path / "nope.csv")


def test_bad_counts_file_names_row_and_column(tmp_path: Path) -> None:
    results = _write(tmp_path, "results.csv", TINY)
    bad = _write(tmp_path, "c.csv", COUNTS.replace("147,verified", "lots,verified"))
    with pytest.raises(DatasetError, match=r"c\.csv: line 2, column 'count'"):
        load_medmnist_plus(results, bad)


def test_average_check_on_tiny_table(tmp_path: Path) -> None:
    records = load_medmnist_plus(_write(tmp_path, "results.csv", TINY))
    avg = _write(tmp_path, "avg.csv", HEADER + (
        "average,end_to_end,VGG16,28,94.80,0.47,99.66,0.06\n"
        "average,knn,AlexNet,64,80.10,,,\n"
    ))
    assert average_check(records, avg) == pytest.approx(0.05, abs=1e-6)


def test_every_mapped_model_is_in_the_space() -> None:
    for label, name in mp.MODEL_NAMES.items():
        assert name in MODELS and MODELS[name].label == label
