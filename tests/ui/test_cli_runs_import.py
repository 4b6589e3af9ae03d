"""`metallmix runs import` of the user's own runs (an Optuna study, a CSV of runs) through
`ui.cli.main`, and `metallmix recommend` saying how many of the backing runs are the user's."""

from __future__ import annotations

import json

import pytest

from knowledge.recommend import Recommendation, clear_cache
from knowledge.runs.store import RunStore
from tests.knowledge.recommend_fixtures import ready_store, small_fits
from tests.knowledge.test_imports_user import GOOD, TRAITS, _csv, _study, _user_csv_of_every_config
from ui.cli import main

OPTUNA_ARGS = ["--map", "arch=model", "--map", "learning_rate=lr", "--map", "bs=batch_size",
               "--map", "n_epochs=epochs", "--fixed", "resolution=224"]


def test_import_an_optuna_study(tmp_path, capsys) -> None:
    url = _study(tmp_path / "study.db")
    store = tmp_path / "runs.sqlite"
    assert main(["runs", "import", "--optuna-storage", url, "--study", "cxr", "--dataset", TRAITS,
                 "--dataset-name", "my-xrays", *OPTUNA_ARGS, "--defaults-for-missing",
                 "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("added 4 runs of your own from Optuna study 'cxr' on user:my-xrays (3 complete, "
                          "1 failed; skipped 1 pruned; defaults for pretrained, scheme, optimizer, "
                          "weight_decay, augmentation, label_smoothing; ignored params dropout)")
    assert main(["runs", "list", "--source", "user", "--json", "--store", str(store)]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 4 and {r["provenance"]["source"] for r in records} == {"user"}


def test_optuna_errors_are_one_line(tmp_path, capsys) -> None:
    url = _study(tmp_path / "study.db")
    store = tmp_path / "runs.sqlite"
    assert main(["runs", "import", "--optuna-storage", url, "--dataset", TRAITS, *OPTUNA_ARGS,
                 "--store", str(store)]) == 2
    err = capsys.readouterr().err
    assert err == ("error: cannot map search-space field(s) pretrained, scheme, optimizer, weight_decay, "
                   "augmentation, label_smoothing from study 'cxr': map them with --map THEIR=OURS or pin "
                   "them with --fixed OURS=VALUE (or take the TrainConfig defaults with "
                   "--defaults-for-missing; model has none); params of the study not used: dropout\n")
    assert main(["runs", "import", "--optuna-storage", url, *OPTUNA_ARGS]) == 2
    assert "--optuna-storage needs --dataset" in capsys.readouterr().err
    assert main(["runs", "import", str(tmp_path / "x.csv"), "--map", "a=lr"]) == 2
    assert "--map goes with --optuna-storage" in capsys.readouterr().err
    assert main(["runs", "import"]) == 2
    assert "give a PATH to import, or --optuna-storage" in capsys.readouterr().err
    assert not store.exists() or len(RunStore(store)) == 0


def test_import_a_csv_of_user_runs_and_an_export_as_before(tmp_path, capsys) -> None:
    store = tmp_path / "runs.sqlite"
    path = _csv(tmp_path / "mine.csv", GOOD)
    assert main(["runs", "import", str(path), "--store", str(store)]) == 0
    assert capsys.readouterr().out.startswith(f"added 3 runs of your own from {path}")
    bad = _csv(tmp_path / "bad.csv", [GOOD[0][:6] + ["fast"] + GOOD[0][7:]])
    assert main(["runs", "import", str(bad), "--store", str(store)]) == 2
    assert "bad.csv: row 1, column lr: 'fast' is not a number; nothing was imported" in capsys.readouterr().err
    assert main(["runs", "export", str(tmp_path / "out.csv"), "--store", str(store)]) == 0
    other = tmp_path / "other.sqlite"
    assert main(["runs", "import", str(tmp_path / "out.csv"), "--store", str(other)]) == 0
    assert "added 3 runs from" in capsys.readouterr().out.splitlines()[-1]
    assert RunStore(other).summary()["source"] == {"user": 3}


def test_recommend_says_how_many_backing_runs_are_yours(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("METALLMIX_EMBEDDINGS", "hashing")
    monkeypatch.setenv("COLUMNS", "200")
    clear_cache()
    store = ready_store(tmp_path / "runs.sqlite")
    small_fits(monkeypatch)
    assert main(["runs", "import", str(_user_csv_of_every_config(tmp_path / "mine.csv")),
                 "--store", str(store.path)]) == 0
    capsys.readouterr()
    traits = '{"n_instances": 1500, "n_classes": 3, "height": 128, "modality": "x-ray"}'
    assert main(["recommend", "--traits", traits, "--store", str(store.path), "--json"]) == 0
    rec = Recommendation.model_validate_json(capsys.readouterr().out)
    n_user = rec.best.support.n_user
    assert n_user >= 1 and rec.learner["n_records"]["user"] > 50
    assert main(["recommend", "--traits", traits, "--store", str(store.path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f", {n_user} of them yours (" in out and "user " in out
    clear_cache()


@pytest.mark.parametrize("value_is", ["val_acc"])
def test_csv_value_is(tmp_path, capsys, value_is) -> None:
    store = tmp_path / "runs.sqlite"
    path = _csv(tmp_path / "mine.csv", [GOOD[0][:13] + [""]])
    assert main(["runs", "import", str(path), "--value-is", value_is, "--store", str(store)]) == 0
    (record,) = RunStore(store).query(source="user")
    assert record.outcome.val_acc == 0.81 and record.outcome.test_acc is None
