"""`metallmix runs list | export | import` through `ui.cli.main` (and one real subprocess)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from knowledge import paths
from knowledge.runs.record import record_to_row
from knowledge.runs.store import RunStore
from tests.knowledge.store_records import make_record, varied_records
from ui.cli import main


@pytest.fixture
def filled() -> RunStore:
    """The default store (isolated per test by conftest) with two own and two published runs."""
    store = RunStore()
    store.add_many(varied_records())
    return store


def test_list_table(filled, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # rich wraps long cells at the default 80 columns
    assert main(["runs", "list"]) == 0
    out = capsys.readouterr().out
    for text in ["own-1", "pneumoniamnist", "resnet18", "vgg16", "end_to_end", "linear_probing",
                 "224", "0.912", "failed", "published", "4 of 4 runs shown"]:
        assert text in out, text
    assert filled.get("own-1").run_id[:8] in out


def test_list_filters_and_limit(filled, capsys):
    assert main(["runs", "list", "--source", "published", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert {r["provenance"]["source"] for r in records} == {"published"} and len(records) == 2
    assert main(["runs", "list", "--dataset", "pneumoniamnist", "--status", "failed", "--json"]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == ["own-2"]
    assert main(["runs", "list", "--dataset", "medmnist:bloodmnist", "--json"]) == 0
    assert [r["base_dataset"] for r in json.loads(capsys.readouterr().out)] == ["bloodmnist"]
    assert main(["runs", "list", "--limit", "1"]) == 0
    assert "1 of 4 runs shown" in capsys.readouterr().out


def test_list_summary_table_and_json(filled, capsys):
    assert main(["runs", "list", "--summary", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == filled.summary()
    assert main(["runs", "list", "--summary"]) == 0
    out = capsys.readouterr().out
    for text in ["4 runs", "by source", "by status", "by base dataset", "by model", "organamnist"]:
        assert text in out, text


def test_list_empty_store_and_explicit_store(tmp_path, capsys):
    path = tmp_path / "other.sqlite"
    RunStore(path).add(make_record("only-here"))
    assert main(["runs", "list", "--store", str(tmp_path / "empty.sqlite")]) == 0
    assert "no runs match" in capsys.readouterr().out
    assert main(["runs", "list", "--store", str(path), "--json"]) == 0
    assert [r["run_id"] for r in json.loads(capsys.readouterr().out)] == ["only-here"]


def test_bad_options_are_usage_errors(filled, capsys):
    assert main(["runs", "list", "--source", "rumour"]) == 2
    assert main(["runs", "list", "--status", "exploded"]) == 2
    assert "exploded" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_export_then_import_into_another_store(filled, tmp_path, capsys, suffix):
    path = tmp_path / f"runs.{suffix}"
    assert main(["runs", "export", str(path), "--source", "own"]) == 0
    assert f"exported 2 runs to {path}" in capsys.readouterr().out
    other = tmp_path / "other.sqlite"
    assert main(["runs", "import", str(path), "--store", str(other)]) == 0
    assert "added 2 runs" in capsys.readouterr().out
    assert RunStore(other).query() == filled.query(source="own")
    assert main(["runs", "import", str(path), "--store", str(other)]) == 0
    assert "added 0 runs" in capsys.readouterr().out


def test_export_format_option(filled, tmp_path, capsys):
    path = tmp_path / "runs.bin"
    assert main(["runs", "export", str(path), "--format", "parquet"]) == 0
    assert len(pd.read_parquet(path)) == 4


def test_import_replace(filled, tmp_path, capsys):
    path = tmp_path / "changed.csv"
    pd.DataFrame([record_to_row(make_record("own-1", status="timeout"))]).to_csv(path, index=False)
    assert main(["runs", "import", str(path)]) == 2
    assert "different content" in capsys.readouterr().err
    assert main(["runs", "import", str(path), "--replace"]) == 0
    assert filled.get("own-1").status == "timeout"


def test_store_errors_are_one_line(tmp_path, capsys):
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"no sqlite here" * 100)
    assert main(["runs", "list", "--store", str(junk)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(junk) in err and err.count("\n") == 1
    assert main(["runs", "export", str(tmp_path / "runs.xlsx")]) == 2
    assert "runs.xlsx" in capsys.readouterr().err


def test_bad_import_file_in_a_real_process_prints_one_error_line(tmp_path):
    bad = tmp_path / "bad.csv"
    frame = pd.DataFrame([record_to_row(make_record(f"r{i}")) for i in range(3)]).astype(object)
    frame.loc[1, "cfg.batch_size"] = 7
    frame.to_csv(bad, index=False)
    env = dict(os.environ, METALLMIX_STORE=str(tmp_path / "runs.sqlite"))
    # the installed console script when present, else the same entry point through python -c
    exe = shutil.which("metallmix")
    script = "import sys; from ui.cli import main; sys.exit(main())"
    command = [exe] if exe else [sys.executable, "-c", script]
    store = ["--store", str(tmp_path / "runs.sqlite")]  # explicit: the default store is seeded when new
    result = subprocess.run([*command, "runs", "import", str(bad), *store], capture_output=True, text=True,
                            env=env, timeout=120, cwd=paths.PACKAGE_DATA.parents[1])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith("error: ") and "bad.csv" in lines[0] and "row 2" in lines[0]
    assert "cfg.batch_size" in lines[0]
    assert len(RunStore(tmp_path / "runs.sqlite")) == 0
