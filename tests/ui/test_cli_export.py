"""`metallmix recommend --export FORMAT [--export-out PATH]`: the top-k for the user's own tuner."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest
import typer
from typer.testing import CliRunner

from knowledge.errors import ConfigError
from knowledge.recommend import clear_cache
from knowledge.recommend.export import FILE_NAMES
from knowledge.runs.store import RunStore
from knowledge.search_space import SPACE, TrainConfig
from knowledge.sweeps.objective import suggest_config
from tests.knowledge.recommend_fixtures import ready_store
from ui.cli.recommend import recommend

TRAITS = '{"n_instances": 3000, "n_classes": 3, "height": 512, "modality": "x-ray"}'


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("METALLMIX_EMBEDDINGS", "hashing")
    monkeypatch.setenv("COLUMNS", "200")
    clear_cache()
    cli = typer.Typer()
    cli.command()(recommend)
    yield cli
    clear_cache()


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return ready_store(tmp_path / "runs.sqlite")


def _invoke(app, store, *args: str):
    return CliRunner().invoke(app, ["--traits", TRAITS, "--store", str(store.path), *args])


def test_export_json_to_stdout_is_the_whole_output(app, store) -> None:
    result = _invoke(app, store, "--export", "json", "--top-k", "3", "--budget", "CPU only")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # nothing but the export on stdout
    assert len(data["configs"]) == 3 and data["budget"]["device"] == "cpu"
    assert [c["rank"] for c in data["configs"]] == [1, 2, 3]
    for entry in data["configs"]:
        TrainConfig(**entry["config"])
        assert {"predicted_acc", "acc_lo", "acc_hi", "predicted_seconds", "supported",
                "extrapolated", "optuna_params"} <= set(entry)


def test_several_formats_go_into_a_folder_and_the_tables_still_print(app, store, tmp_path) -> None:
    out = tmp_path / "warm"
    result = _invoke(app, store, "--export", "optuna,ray", "--export", "command", "-k", "2",
                     "--export-out", str(out))
    assert result.exit_code == 0, result.output
    assert "Recommendation for your dataset" in result.stdout  # the export went to files
    assert sorted(p.name for p in out.iterdir()) == sorted(
        FILE_NAMES[f] for f in ("optuna", "ray", "command"))
    assert "wrote the optuna export of the top 2 configs" in result.stderr
    namespace: dict = {}
    exec(compile((out / FILE_NAMES["optuna"]).read_text(), "warm.py", "exec"), namespace)
    drawn: list[TrainConfig] = []

    def objective(trial: optuna.Trial) -> float:
        drawn.append(suggest_config(trial, SPACE, lambda model: True))
        return 0.0

    namespace["study"].optimize(objective, n_trials=2)
    points = json.loads((out / FILE_NAMES["ray"]).read_text())["points_to_evaluate"]
    assert drawn == [TrainConfig(**p) for p in points] and len(points) == 2
    lines = (out / FILE_NAMES["command"]).read_text().splitlines()
    assert sum(line.startswith("metallmix train DATASET --model ") for line in lines) <= 2


def test_one_format_to_a_file_with_json_output(app, store, tmp_path) -> None:
    target = tmp_path / "ray.json"
    result = _invoke(app, store, "--export", "ray", "--export-out", str(target), "--json", "-k", "2",
                     "--export-space", "cpu", "--budget", "CPU only")
    assert result.exit_code == 0, result.output
    json.loads(result.stdout)  # --json still prints the recommendation
    data = json.loads(target.read_text())
    assert data["search_space"] == "cpu"
    assert len(data["points_to_evaluate"]) + len(data["outside_space"]) == 2


@pytest.mark.parametrize(("args", "message"), [
    (["--export", "yaml"], "unknown export format 'yaml'; allowed: optuna, ray, json, command"),
    (["--export", "json", "--export-space", "gpu"], "unknown search space 'gpu'; known: full, cpu"),
    (["--export", "json", "--json"], "--json and --export both print to stdout"),
    (["--export-out", "x.json"], "--export-out goes with --export FORMAT"),
])
def test_bad_export_options_are_one_line_errors(app, store, args, message) -> None:
    result = _invoke(app, store, *args)
    assert isinstance(result.exception, ConfigError) and message in str(result.exception)
