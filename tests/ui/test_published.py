"""`import_medmnist_plus` CLI command (registered by the lead as `metallmix runs import-medmnist-plus`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from knowledge.errors import DatasetError
from ui.cli.published import import_medmnist_plus

TINY = (
    "dataset,scheme,model,resolution,acc_mean,acc_std,auc_mean,auc_std\n"
    "bloodmnist,end_to_end,VGG16,28,94.85,0.47,99.66,0.06\n"
    "bloodmnist,knn,AlexNet,64,80.10,,,\n"
    "bloodmnist,linear_probing,AlexNet,64,85.00,0.30,97.00,0.10\n"
)


@pytest.fixture()
def app() -> typer.Typer:
    app = typer.Typer()
    app.command()(import_medmnist_plus)
    app.command("other")(lambda: None)  # two commands: invoke by name, as under `runs`
    return app


def test_cli_imports_then_reports_already_present(app: typer.Typer, tmp_path: Path) -> None:
    results = tmp_path / "medmnist_plus" / "results.csv"
    results.parent.mkdir()
    results.write_text(TINY)
    args = ["import-medmnist-plus", "--results", str(results), "--store", str(tmp_path / "s.sqlite")]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "added 3, already present 0" in first.output
    assert "end_to_end 1" in first.output and "knn 1" in first.output
    assert "2 alexnet records" in first.output and "cannot train" in first.output
    second = CliRunner().invoke(app, [*args, "--json"])
    assert second.exit_code == 0, second.output
    summary = json.loads(second.output)
    assert (summary["added"], summary["already_present"]) == (0, 3)
    assert summary["per_scheme"] == {"end_to_end": 1, "knn": 1, "linear_probing": 1}
    assert summary["untrainable"] == {"alexnet": 2}


def test_cli_bad_file_is_a_one_line_dataset_error(app: typer.Typer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(TINY.replace("VGG16", "VGG-19"))
    result = CliRunner().invoke(app, ["import-medmnist-plus", "--results", str(bad),
                                      "--store", str(tmp_path / "s.sqlite")])
    assert isinstance(result.exception, DatasetError)
    assert "line 2, column 'model'" in str(result.exception)
    missing = CliRunner().invoke(app, ["import-medmnist-plus", "--results", str(tmp_path / "no.csv"),
                                       "--store", str(tmp_path / "s.sqlite")])
    assert isinstance(missing.exception, DatasetError) and "not found" in str(missing.exception)
