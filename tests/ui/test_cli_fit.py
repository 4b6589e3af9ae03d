"""`metallmix fit`: fits the meta-learner from the store, saves it, prints what it did."""

from __future__ import annotations

import json

import pytest
import typer
from typer.testing import CliRunner

from knowledge.errors import StoreError
from knowledge.metalearner import artifact, model
from knowledge.runs.store import RunStore
from tests.knowledge.synthetic_runs import synthetic_records
from ui.cli.fit import fit


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setattr(model, "ACC_PARAMS", dict(model.ACC_PARAMS, n_estimators=60, n_jobs=1))
    cli = typer.Typer()
    cli.command()(fit)
    return cli


def test_fit_json(app, tmp_path) -> None:
    store = RunStore(tmp_path / "runs.sqlite")
    store.add_many(synthetic_records(per_dataset=12))
    out = tmp_path / "ml"
    result = CliRunner().invoke(app, ["--store", str(store.path), "--out", str(out), "--json",
                                      "--cv-folds", "3"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["artifact"] == str(out)
    assert summary["records"] == {"own": 36, "published": 30}  # one failed run per dataset
    assert summary["cv"]["n_folds"] == 3 and summary["cv"]["mae"] > 0
    assert summary["fit_seconds"] > 0
    meta = artifact.read_metadata(out)
    assert meta["cv"]["mae"] == summary["cv"]["mae"] and meta["n_records"] == summary["records"]
    artifact.load(out)


def test_fit_table_default_locations(app, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps long cells at the default 80 columns
    RunStore().add_many(synthetic_records(per_dataset=12))  # the isolated default store
    result = CliRunner().invoke(app, ["--cv-folds", "0"])
    assert result.exit_code == 0, result.output
    assert "records used" in result.stdout and "published: 30" in result.stdout
    assert "skipped" in result.stdout
    assert (artifact.default_dir() / "accuracy.ubj").exists()


def test_fit_on_an_empty_store_is_a_user_error(app, tmp_path) -> None:
    result = CliRunner().invoke(app, ["--store", str(tmp_path / "empty.sqlite")])
    assert isinstance(result.exception, StoreError)
    assert "at least 10" in str(result.exception)
    from ui import cli

    if "fit" in {c.name for c in cli.app.registered_commands}:  # registered by the lead
        assert cli.main(["fit", "--store", str(tmp_path / "empty.sqlite")]) == 2
