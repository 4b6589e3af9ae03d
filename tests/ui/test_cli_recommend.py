"""`metallmix recommend`: --traits JSON and DATASET inputs, rich and JSON output, errors, plot."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from knowledge.errors import DatasetError
from knowledge.recommend import Recommendation, clear_cache
from knowledge.runs.store import RunStore
from tests.knowledge.recommend_fixtures import ready_store
from ui.cli.recommend import recommend

TRAITS = '{"n_instances": 3000, "n_classes": 3, "height": 512, "modality": "x-ray"}'


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    monkeypatch.setenv("METALLMIX_EMBEDDINGS", "hashing")
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps long cells at the default 80 columns
    clear_cache()
    cli = typer.Typer()
    cli.command()(recommend)
    yield cli
    clear_cache()


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    return ready_store(tmp_path / "runs.sqlite")


def test_traits_json(app, store) -> None:
    result = CliRunner().invoke(app, ["--traits", TRAITS, "--store", str(store.path), "--json",
                                      "--top-k", "3", "--budget", "CPU only", "--exclude", "alpha"])
    assert result.exit_code == 0, result.output
    rec = Recommendation.model_validate_json(result.stdout)
    assert len(rec.top) == 3 and rec.budget.cpu_only and rec.meta_features.modality == "x-ray"
    assert rec.similar_runs and "alpha" not in {h.base_dataset for h in rec.similar_runs}
    assert rec.learner["store"] == str(store.path)


def test_traits_rich_view(app, store) -> None:
    result = CliRunner().invoke(app, ["-t", TRAITS, "--store", str(store.path), "-b", "one hour on a T4"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Recommendation for your dataset" in out and "NVIDIA T4" in out
    assert "top 5 of" in out and "Why" in out and "similar past runs" in out
    assert "faster:" in out and "answered in" in out


def test_the_header_says_which_device_was_assumed_and_why(app, store) -> None:
    result = CliRunner().invoke(app, ["-t", TRAITS, "--store", str(store.path), "-b", "Colab, 1 hour"])
    assert result.exit_code == 0, result.output
    header = result.stdout.splitlines()[0]
    assert "budget: 60 min on NVIDIA T4 (assumed: Colab: assumed the free tier's T4" in header
    result = CliRunner().invoke(app, ["-t", TRAITS, "--store", str(store.path), "-b",
                                      "2 hours on my Quadro K2200"])
    assert result.exception is not None and "unknown device 'quadro k2200'" in str(result.exception)


def test_dataset_path(app, store, tmp_path) -> None:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 40), ("val", 10), ("test", 10)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (n, 16, 16), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(n) % 2).reshape(-1, 1)
    path = tmp_path / "toy.npz"
    np.savez(path, **arrays)
    result = CliRunner().invoke(app, [str(path), "--modality", "ultrasound", "--store", str(store.path),
                                      "--json", "-k", "2"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["dataset"] == str(path) and len(data["top"]) == 2
    assert data["meta_features"]["n_instances"] == 40 and data["meta_features"]["modality"] == "ultrasound"


@pytest.mark.parametrize(("args", "message"), [
    (["--traits", '{"n_instance": 3}'], "unknown key 'n_instance'; allowed keys: n_instances"),
    (["--traits", "{bad"], "--traits is not valid JSON"),
    (["--traits", '{"n_classes": 1}'], "n_classes"),
    (["--traits", "[3]"], "JSON object"),
    ([], "either a DATASET or --traits"),
    (["some.npz", "--traits", "{}"], "either a DATASET or --traits"),
    (["--traits", '{"n_classes": 3}', "--modality", "ct"], "--modality goes with a DATASET"),
    (["/no/such/file.npz"], "dataset not found"),
    # the impossible (issue 13 item 9): the field and the value, one line
    (["--traits", '{"n_instances": 1000000000}'], "n_instances: 1,000,000,000 training images is "
                                                  "beyond the hard limit of 100,000,000"),
    (["--traits", '{"height": 100000, "n_classes": 2}'], "height: 100,000 px is beyond the hard "
                                                         "limit of 65,535 px"),
    (["--traits", '{"n_instances": 3, "n_classes": 1000}'], "n_classes 1,000 exceeds n_instances 3"),
    (["--traits", '{"n_instances": true}'], "n_instances: True is a boolean, not a number"),
    (["--traits", '{"n_instances": -5}'], "n_instances: Input should be greater than or equal to 1 "
                                          "(got -5)"),
    (["--traits", '{"n_instances": NaN}'], "n_instances: Input should be a finite number (got nan)"),
    (["--traits", '{"imbalance_ratio": Infinity}'], "imbalance_ratio: Input should be a finite number"),
    (["--traits", '{"n_instances": ' + "9" * 5000 + "}"], "--traits is not usable JSON (Exceeds the "
                                                          "limit (4300 digits)"),
    (["--traits", "[" * 100_000 + "]" * 100_000], "--traits is not usable JSON (nested too deeply)"),
])
def test_bad_input_is_a_one_line_user_error(app, store, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, [*args, "--store", str(store.path)])
    assert isinstance(result.exception, DatasetError), result.output
    assert message in str(result.exception) and "\n" not in str(result.exception)


def test_main_prints_error_and_exits_2(store, capsys) -> None:
    from ui import cli

    if "recommend" not in {c.name for c in cli.app.registered_commands}:
        pytest.skip("`recommend` is not registered in ui/cli/__init__.py yet")
    assert cli.main(["recommend", "--traits", '{"colour": 1}', "--store", str(store.path)]) == 2
    assert "error: traits: unknown key 'colour'" in capsys.readouterr().err


@pytest.mark.parametrize(("traits", "message"), [
    ('{"n_instances": 1000000000, "n_classes": 3}', "error: traits: n_instances: 1,000,000,000 "
                                                    "training images is beyond the hard limit"),
    ('{"n_instances": 3, "n_classes": 1000}', "error: traits: n_classes 1,000 exceeds n_instances 3"),
    ('{"n_instances": true, "n_classes": 3}', "error: traits: n_instances: True is a boolean"),
    ('{"modality": "' + "x" * 100_000 + '"}', "error: traits: modality: unknown modality 'xxx"),
])
def test_main_refuses_impossible_traits_in_one_line_exit_2(store, capsys, traits, message) -> None:
    from ui import cli

    assert cli.main(["recommend", "--traits", traits, "--store", str(store.path)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(message) and captured.err.count("\n") == 1, captured.err[:500]
    assert len(captured.err) < 400 and "Traceback" not in captured.err and not captured.out


def test_unusual_traits_are_answered_with_a_note(app, store) -> None:
    unusual = '{"n_instances": 5000000, "n_classes": 3, "height": 4000, "modality": "x-ray"}'
    result = CliRunner().invoke(app, ["--traits", unusual, "--store", str(store.path), "--json"])
    assert result.exit_code == 0, result.output
    rec = Recommendation.model_validate_json(result.stdout)
    assert set(rec.outside_range) == {"n_instances", "height", "width"}
    assert "n_instances 5,000,000 (training images; recorded" in rec.notes[0]
    rich = CliRunner().invoke(app, ["--traits", unusual, "--store", str(store.path)])
    assert rich.exit_code == 0 and "outside the range the meta-dataset records" in rich.stdout


def test_plot_writes_the_waterfall(app, store, tmp_path) -> None:
    pytest.importorskip("shap")
    png = tmp_path / "plots" / "why.png"
    result = CliRunner().invoke(app, ["-t", TRAITS, "--store", str(store.path), "--json",
                                      "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


# --- start-up: only the command asked for is imported --------------------------------------------

def test_main_registers_only_the_command_it_runs() -> None:
    from ui.cli import COMMANDS, GROUPS, build_app, command_name

    assert command_name(["-v", "recommend", "--traits", "{}"]) == "recommend"
    assert command_name(["eval", "lodo"]) == "eval" and command_name(["--help"]) is None
    assert command_name(["nosuch"]) is None
    only = build_app("recommend")
    assert [c.name for c in only.registered_commands] == ["recommend"] and not only.registered_groups
    full = build_app()
    assert [c.name for c in full.registered_commands] == list(COMMANDS)
    assert [g.name for g in full.registered_groups] == list(GROUPS)


def test_recommend_process_imports_no_agent_or_heavy_library(store) -> None:
    import os
    import subprocess
    import sys

    # the `recommend` command's start-up path: the CLI with just that command, then the call
    script = f"""
import sys, json
from ui.cli import main
rc = main(["recommend", "--traits", {TRAITS!r}, "--store", {str(store.path)!r}, "--json"])
heavy = [m for m in ("agent", "langchain_core", "langgraph", "torch", "gradio", "xgboost",
                     "sklearn", "scipy", "pandas", "faiss", "shap", "matplotlib") if m in sys.modules]
print(json.dumps({{"rc": rc, "heavy": heavy}}), file=sys.stderr)
"""
    env = {**os.environ, "METALLMIX_EMBEDDINGS": "hashing"}
    runs = [subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=300, env=env) for _ in range(2)]
    # the first process on a new store builds and saves the retrieval index (FAISS, pandas);
    # the next one only loads what was saved
    cold, warm = (json.loads(r.stderr.strip().splitlines()[-1]) for r in runs)
    assert cold["rc"] == 0 and warm == {"rc": 0, "heavy": []}, runs[1].stderr[-2000:]
    assert json.loads(runs[1].stdout) == json.loads(runs[0].stdout) | {
        "seconds": json.loads(runs[1].stdout)["seconds"]}


# --- readable at 80 columns (issue 16 item 7) ---------------------------------------------------------

@pytest.mark.parametrize("budget", [[], ["-b", "CPU only, 1 hour", "-k", "12"]])
def test_the_card_is_readable_at_80_columns(app, store, monkeypatch, budget: list[str]) -> None:
    args = ["-t", TRAITS, "--store", str(store.path), *budget]
    rec = Recommendation.model_validate_json(CliRunner().invoke(app, [*args, "--json"]).stdout)
    monkeypatch.setenv("COLUMNS", "80")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "…" not in out  # no cell cut short
    assert max(len(line) for line in out.splitlines()) <= 80
    top = out[out.index(f"top {len(rec.top)} of"):out.index("Why")]
    rows = [line.split() for line in top.splitlines()]
    for r in rec.top:  # each config on one row: rank, the model name in full, px, lr, epochs, accuracy
        c = r.config
        row = next(row for row in rows if row and row[0] == str(r.rank))
        line = " ".join(row)
        assert line.startswith(f"{r.rank} {c.spec.label} "), line
        assert f" {c.resolution} {c.lr:.0e} {c.epochs} {100 * r.predicted_acc:.1f} %" in line
    below = " ".join(top.split())  # the folded columns, in the caption under the table
    assert "80 % intervals: #1 " in below
    assert "in every row" in below or "wd / batch / aug: #1 " in below


def test_a_wide_terminal_keeps_every_column(app, store, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    result = CliRunner().invoke(app, ["-t", TRAITS, "--store", str(store.path)])
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if "pred. acc" in line)
    for name in ("model", "pre", "scheme", "px", "lr", "wd", "batch", "ep", "aug", "pred. acc", "time"):
        assert f" {name} " in header
    assert "…" not in result.stdout
