"""Hostile run records: rows no real run can produce are refused by the record schema, and an import
holding one is refused whole, with one error line that names the row and the field."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from pydantic import ValidationError

from knowledge.errors import StoreError
from knowledge.runs.record import Outcome, Provenance, RunRecord, record_to_row
from knowledge.runs.store import RunStore
from tests.knowledge.store_records import make_record, published_record
from ui.cli import main

# column -> (an impossible value, the column the error must name)
IMPOSSIBLE = {
    "inf-train-seconds": ({"out.train_seconds": math.inf}, "out.train_seconds"),
    "inf-accuracy-std": ({"out.test_acc_std": math.inf}, "out.test_acc_std"),
    "negative-peak-memory": ({"out.peak_memory_mb": -5.0}, "out.peak_memory_mb"),
    "timestamp-not-a-date": ({"prov.timestamp": "last tuesday"}, "prov.timestamp"),
    "timestamp-impossible-day": ({"prov.timestamp": "2025-02-31T00:00:00"}, "prov.timestamp"),
    "class-min-above-max": ({"mf.class_size_min": 500.0, "mf.class_size_max": 20.0}, "mf"),
    "50-classes-in-10-images": ({"mf.n_classes": 50, "mf.n_instances": 10}, "mf"),
    "ok-without-accuracy": ({"out.val_acc": None, "out.test_acc": None}, "out.val_acc"),
    "blank-run-id": ({"run_id": "   "}, "run_id"),
    "empty-run-id": ({"run_id": ""}, "run_id"),
    "blank-dataset-id": ({"dataset_id": " "}, "dataset_id"),
}


def _rows(bad: dict[str, object] | None = None, *, at: int = 1, n: int = 3) -> pd.DataFrame:
    frame = pd.DataFrame([record_to_row(make_record(f"r{i}")) for i in range(n)]).astype(object)
    for column, value in (bad or {}).items():
        frame.loc[at, column] = value
    return frame


@pytest.mark.parametrize("case", list(IMPOSSIBLE), ids=list(IMPOSSIBLE))
@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_impossible_row_is_refused_and_nothing_is_imported(tmp_path, case, suffix):
    bad, column = IMPOSSIBLE[case]
    path = tmp_path / f"runs.{suffix}"
    frame = _rows(bad, at=1)
    if suffix == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    store = RunStore(tmp_path / "runs.sqlite")
    with pytest.raises(StoreError) as info:
        store.import_file(path)
    message = str(info.value)
    assert f"row 2: {column}" in message and "nothing was imported" in message and "\n" not in message
    assert len(store) == 0


@pytest.mark.parametrize("text", ["nan", "NaN", "-inf", "Infinity"])
def test_non_finite_text_in_a_csv_is_refused(tmp_path, text):
    path = tmp_path / "runs.csv"
    _rows({"out.test_acc": text}, at=0).to_csv(path, index=False)
    store = RunStore(tmp_path / "runs.sqlite")
    with pytest.raises(StoreError, match="row 1: out.test_acc: .*finite"):
        store.import_file(path)
    assert len(store) == 0


def test_published_row_without_citation_is_refused(tmp_path):
    frame = pd.DataFrame([record_to_row(published_record("bloodmnist", "vgg16"))]).astype(object)
    frame.loc[0, "prov.citation"] = None
    path = tmp_path / "published.parquet"
    frame.to_parquet(path, index=False)
    store = RunStore(tmp_path / "runs.sqlite")
    with pytest.raises(StoreError, match=r"published.parquet: row 1: prov.citation: a published record "
                                         r"needs a citation"):
        store.import_file(path)
    assert len(store) == 0


def test_import_error_names_the_run_id_of_the_row(tmp_path):
    path = tmp_path / "runs.csv"
    _rows({"out.train_seconds": "inf"}, at=2).to_csv(path, index=False)
    with pytest.raises(StoreError, match=r"row 3: out.train_seconds: .*finite.*\(run_id 'r2'\)"):
        RunStore(tmp_path / "runs.sqlite").import_file(path)


def test_cli_import_of_an_impossible_file_is_one_error_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "hostile.csv"
    frame = _rows({"out.train_seconds": "inf"}, at=0, n=4)
    frame.loc[3, "prov.timestamp"] = "not a date"  # a second bad row: still one line
    frame.to_csv(path, index=False)
    store = tmp_path / "runs.sqlite"
    assert main(["runs", "import", str(path), "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "hostile.csv: row 1: out.train_seconds" in err and "(and 1 more bad rows)" in err
    assert len(RunStore(store)) == 0


@pytest.mark.parametrize("changes, column", [
    (dict(outcome=Outcome.model_construct(val_acc=0.9, train_seconds=math.inf)), "out.train_seconds"),
    (dict(outcome=Outcome.model_construct(val_acc=0.9, seconds_per_epoch=math.nan)), "out.seconds_per_epoch"),
    (dict(outcome=Outcome()), "out.val_acc"),  # status ok, no accuracy
    (dict(run_id=""), "run_id"),
    (dict(provenance=Provenance.model_construct(source="own", timestamp="soon")), "prov.timestamp"),
])
def test_mutated_record_is_refused_by_the_store(tmp_path, changes, column):
    """`model_copy(update=...)` and attribute assignment skip validation: `add` validates again."""
    store = RunStore(tmp_path / "runs.sqlite")
    record = make_record("mutated").model_copy(update=changes)
    with pytest.raises(StoreError, match=f"run .*: not a valid record: {column}"):
        store.add(record)
    assert len(store) == 0


@pytest.mark.parametrize("field, value", [
    ("train_seconds", math.inf), ("train_seconds", -1.0), ("val_acc", math.nan), ("test_acc", 1.5),
    ("peak_memory_mb", -math.inf), ("test_acc_std", math.inf),
])
def test_outcome_numbers_are_finite_and_in_range(field, value):
    with pytest.raises(ValidationError):
        Outcome(**{field: value})


def test_schema_rules_name_their_field():
    from knowledge.runs.store import describe_error

    base = make_record("x").model_dump()

    def error(**changes: object) -> str:
        data = {**base, **changes}
        with pytest.raises(ValidationError) as info:
            RunRecord.model_validate(data)
        return describe_error(info.value)

    assert error(provenance={**base["provenance"], "source": "published", "citation": " "}).startswith(
        "prov.citation: a published record needs a citation")
    assert error(outcome={}).startswith("out.val_acc: a run with status 'ok' needs an accuracy")
    assert error(run_id="\t").startswith("run_id: must not be blank")
    assert error(provenance={**base["provenance"], "timestamp": "yesterday"}).startswith(
        "prov.timestamp: not an ISO 8601 date-time")
    # what stays allowed: a failed run without accuracies, a timezone-less or date-only timestamp
    RunRecord.model_validate({**base, "status": "failed", "outcome": {}})
    RunRecord.model_validate({**base, "provenance": {**base["provenance"], "timestamp": "2025-01-02"}})
