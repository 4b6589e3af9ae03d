"""`metallmix sweep`: report table / JSON, and one-line errors before any trial."""

from __future__ import annotations

import json

import pytest

from knowledge.runs.store import RunStore
from tests.knowledge.sweep_fakes import FAKE
from ui.cli import main


@pytest.fixture
def fake_backend(monkeypatch):
    monkeypatch.setattr("knowledge.sweeps.runner.REAL", FAKE)


def _args(tmp_path, *extra):
    return ["sweep", *extra, "--storage", str(tmp_path / "s.sqlite"), "--store", str(tmp_path / "r.sqlite"),
            "--no-progress"]


def test_sweep_prints_the_report_as_json(tmp_path, capsys, fake_backend):
    rc = main(_args(tmp_path, "fake:a", "fake:b", "--trials", "2", "--sampler", "random", "--json"))
    out = capsys.readouterr().out
    assert rc == 0
    report = json.loads(out)
    assert report["sampler"] == "random" and report["trials"] == 2
    assert [(s["source"], s["finished"]) for s in report["sources"]] == [("fake:a", 2), ("fake:b", 2)]
    assert RunStore(tmp_path / "r.sqlite").count() == 4


def test_sweep_prints_a_table_and_resumes(tmp_path, capsys, fake_backend):
    assert main(_args(tmp_path, "fake:a", "--trials", "2", "--warmup", "1")) == 0
    assert main(_args(tmp_path, "fake:a", "--trials", "3", "--warmup", "1")) == 0
    out = capsys.readouterr().out
    assert "best val acc" in out and "fake:a" in out and "run store:" in out
    assert RunStore(tmp_path / "r.sqlite").count() == 3  # 2, then one more


def test_bad_source_is_one_error_line_before_any_trial(tmp_path, capsys, fake_backend):
    rc = main(_args(tmp_path, "fake:a", "/nowhere/x.npz", "--trials", "2"))
    err = capsys.readouterr().err
    assert rc == 2
    assert err.strip() == "error: dataset not found: /nowhere/x.npz"
    assert not (tmp_path / "r.sqlite").exists()


def test_warmup_with_random_sampler_is_an_error(tmp_path, capsys, fake_backend):
    rc = main(_args(tmp_path, "fake:a", "--trials", "2", "--sampler", "random", "--warmup", "3"))
    assert rc == 2 and capsys.readouterr().err.startswith("error: --warmup only applies to the tpe")


def test_real_loader_rejects_a_missing_file(tmp_path, capsys):
    rc = main(_args(tmp_path, str(tmp_path / "missing.npz"), "--trials", "1"))
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and "missing.npz" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("budget", ["0", "-3", "inf", "nan"])
def test_trial_budget_must_be_positive_and_finite(tmp_path, capsys, fake_backend, budget):
    rc = main(_args(tmp_path, "fake:a", "--trials", "1", "--trial-budget", budget))
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: --trial-budget") and err.count("\n") == 1
    assert not (tmp_path / "r.sqlite").exists()
