"""The shipped meta-dataset seeds the default store; `rebuild` regenerates it from its sources."""

from __future__ import annotations

import pandas as pd
import pytest

from knowledge import paths
from knowledge.meta_dataset import shipped
from knowledge.metafeatures import from_class_counts
from knowledge.runs.record import Outcome, Provenance, RunRecord, record_to_row
from knowledge.runs.store import RunStore
from knowledge.search_space import TrainConfig


def _own(i: int) -> RunRecord:
    return RunRecord(
        dataset_id=f"digits?n={100 + i}&seed=0",
        base_dataset="digits",
        medical=False,
        meta_features=from_class_counts([10 + i, 12, 15]),
        config=TrainConfig(model="resnet18", pretrained=False, lr=1e-3 * (i + 1)),
        outcome=Outcome(val_acc=0.5, test_acc=0.5, train_seconds=3.0),
        provenance=Provenance(source="own", seed=i, device="cpu"),
    )


@pytest.fixture
def tiny_shipped(tmp_path, monkeypatch):
    path = tmp_path / "meta_dataset.parquet"
    pd.DataFrame([record_to_row(_own(i)) for i in range(3)]).to_parquet(path, index=False)
    monkeypatch.setattr(shipped, "SHIPPED", path)
    return path


def test_fresh_default_store_is_seeded_once(tiny_shipped):
    assert not paths.store_path().exists()
    store = shipped.open_store()
    assert len(store) == 3
    store.add(_own(7))
    assert len(shipped.open_store()) == 4  # an existing store is not re-seeded or reset


def test_explicit_store_path_is_not_seeded(tiny_shipped, tmp_path):
    assert len(shipped.open_store(tmp_path / "other.sqlite")) == 0


def test_runs_list_summary_on_fresh_install_counts_shipped(tiny_shipped, capsys):
    from ui.cli import main

    assert main(["runs", "list", "--summary", "--json"]) == 0
    assert '"own": 3' in capsys.readouterr().out


def test_rebuild_writes_published_and_own(tmp_path):
    store = RunStore(tmp_path / "s.sqlite")
    store.add_many([_own(i) for i in range(2)])
    out = tmp_path / "md.parquet"
    counts = shipped.rebuild(store, out=out)
    assert counts == {"published": 1440, "own": 2, "total": 1442}
    back = RunStore(tmp_path / "back.sqlite")
    assert back.import_file(out) == 1442
    assert back.count(source="published") == 1440 and back.count(source="own") == 2


def test_committed_meta_dataset_validates_and_has_provenance():
    if not shipped.SHIPPED.exists():
        pytest.skip("no shipped meta-dataset in this checkout")
    store = RunStore(paths.home() / "check.sqlite")
    n = store.import_file(shipped.SHIPPED)  # validates every row against the schema and SPACE
    assert n >= 1440 and store.count(source="published") >= 1440
    for record in store.query(source="own"):
        assert record.provenance.code_version and record.provenance.device and record.provenance.seed is not None


def test_default_store_first_created_elsewhere_is_seeded_on_open(tiny_shipped):
    RunStore().add(_own(9))  # e.g. `metallmix train` created the default store before anything else
    assert len(shipped.open_store()) == 4
