"""The user's own runs as evidence (`knowledge.runs.imports`): a real Optuna study (temp SQLite)
mapped onto the search space, a CSV of runs in the documented format, provenance `user`, and the
recommendation counting the backing runs that are the user's."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import optuna
import pytest

from knowledge.metalearner.support import Evidence, Support
from knowledge.recommend import clear_cache, meta_from_traits, recommend
from knowledge.runs import import_csv, import_optuna, imports
from knowledge.runs.imports import RunImportError, UserDataset
from knowledge.runs.record import record_to_row
from knowledge.runs.store import RunStore
from knowledge.search_space import TrainConfig
from tests.knowledge.recommend_fixtures import ready_store, small_fits
from tests.knowledge.synthetic_runs import synthetic_records

optuna.logging.set_verbosity(optuna.logging.WARNING)
TRAITS = '{"n_instances": 3000, "n_classes": 3, "height": 512, "modality": "x-ray"}'
MAPPING = {"arch": "model", "learning_rate": "lr", "bs": "batch_size", "n_epochs": "epochs"}
FIXED = {"resolution": 224, "pretrained": True, "scheme": "end_to_end", "optimizer": "adamw",
         "weight_decay": 1e-4, "augmentation": "light", "label_smoothing": 0.0}


def _study(path: Path, *, direction: str | list[str] = "maximize", name: str = "cxr",
           trials: list[dict] | None = None) -> str:
    """A SQLite Optuna study whose param names are not ours: 3 complete, 1 failed, 1 pruned."""
    url = f"sqlite:///{path}"
    kwargs = {"directions": direction} if isinstance(direction, list) else {"direction": direction}
    study = optuna.create_study(study_name=name, storage=url, **kwargs)
    rows = trials or [
        {"arch": "resnet18", "learning_rate": 1e-3, "bs": 32, "n_epochs": 10, "dropout": 0.1, "_v": 0.81},
        {"arch": "resnet50", "learning_rate": 3e-4, "bs": 64, "n_epochs": 20, "dropout": 0.2, "_v": 0.86},
        {"arch": "resnet18", "learning_rate": 1e-2, "bs": 128, "n_epochs": 5, "dropout": 0.3, "_v": 0.78},
    ]
    for row in rows:
        study.enqueue_trial({k: v for k, v in row.items() if not k.startswith("_")})

    def objective(trial: optuna.Trial) -> float | tuple[float, float]:
        trial.suggest_categorical("arch", ["resnet18", "resnet50", "convnext"])
        trial.suggest_float("learning_rate", 1e-5, 10.0, log=True)
        trial.suggest_categorical("bs", [32, 64, 128, 100])
        trial.suggest_int("n_epochs", 1, 50)
        trial.suggest_float("dropout", 0.0, 0.5)
        value = next(r["_v"] for r in rows if r["arch"] == trial.params["arch"]
                     and r["learning_rate"] == trial.params["learning_rate"])
        if isinstance(direction, list):
            return 1.0 - value, 12.0
        return 1.0 - value if direction == "minimize" else value

    study.optimize(objective, n_trials=len(rows))
    study.enqueue_trial({"arch": "resnet18", "learning_rate": 1e-3, "bs": 32, "n_epochs": 3})
    failed = study.ask({"arch": optuna.distributions.CategoricalDistribution(["resnet18", "resnet50", "convnext"]),
                        "learning_rate": optuna.distributions.FloatDistribution(1e-5, 10.0, log=True),
                        "bs": optuna.distributions.CategoricalDistribution([32, 64, 128, 100]),
                        "n_epochs": optuna.distributions.IntDistribution(1, 50)})
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    pruned = study.ask()
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    return url


@pytest.fixture
def dataset() -> UserDataset:
    return imports.user_dataset(TRAITS, name="my-xrays")


def test_optuna_study_maps_onto_the_search_space(tmp_path, dataset) -> None:
    url = _study(tmp_path / "study.db")
    store = RunStore(tmp_path / "runs.sqlite")
    added, result = import_optuna.import_optuna(store, url, "cxr", dataset, MAPPING, FIXED)
    assert added == 4 and result.unused == ["dropout"] and result.skipped == {"pruned": 1}
    records = store.query(source="user")
    assert len(records) == 4 and {r.provenance.source for r in records} == {"user"}
    ok = [r for r in records if r.status == "ok"]
    assert sorted((r.config.model, r.config.lr, r.config.batch_size, r.config.epochs, r.outcome.test_acc)
                  for r in ok) == [("resnet18", 1e-3, 32, 10, 0.81), ("resnet18", 1e-2, 128, 5, 0.78),
                                   ("resnet50", 3e-4, 64, 20, 0.86)]
    assert all(r.config.resolution == 224 and r.dataset_id == "user:my-xrays" for r in records)
    assert all(r.meta_features.n_instances == 3000 and r.provenance.study == "optuna:cxr" for r in records)
    (failed,) = [r for r in records if r.status == "failed"]
    assert failed.outcome.test_acc is None and failed.config.model == "resnet18"
    # the same study again: the same run ids, nothing new
    assert import_optuna.import_optuna(store, url, None, dataset, MAPPING, FIXED)[0] == 0


def test_unmappable_params_are_one_exact_error(tmp_path, dataset) -> None:
    url = _study(tmp_path / "study.db")
    with pytest.raises(RunImportError) as err:
        import_optuna.import_optuna(RunStore(tmp_path / "runs.sqlite"), url, "cxr", dataset,
                              {"arch": "model", "learning_rate": "lr"})
    assert str(err.value) == (
        "cannot map search-space field(s) pretrained, scheme, resolution, optimizer, weight_decay, "
        "batch_size, epochs, augmentation, label_smoothing from study 'cxr': map them with --map "
        "THEIR=OURS or pin them with --fixed OURS=VALUE (or take the TrainConfig defaults with "
        "--defaults-for-missing; model has none); params of the study not used: bs, dropout, n_epochs")
    assert len(RunStore(tmp_path / "runs.sqlite")) == 0


def test_defaults_for_missing_fill_only_when_asked(tmp_path, dataset) -> None:
    study = import_optuna.load_study(_study(tmp_path / "study.db"), "cxr")
    result = import_optuna.records_from_study(study, dataset, MAPPING, {"resolution": 224},
                                        defaults_for_missing=True)
    defaults = TrainConfig(model="resnet18")
    assert result.defaulted == ["pretrained", "scheme", "optimizer", "weight_decay", "augmentation",
                                "label_smoothing"]
    assert all(r.config.optimizer == defaults.optimizer and r.config.weight_decay == defaults.weight_decay
               for r in result.records)
    with pytest.raises(RunImportError, match=r"cannot map search-space field\(s\) model, "):
        import_optuna.records_from_study(study, dataset, {"learning_rate": "lr"}, defaults_for_missing=True)


@pytest.mark.parametrize(("mapping", "fixed", "message"), [
    ({"learning_rate": "lr", "arch": "modle"}, {}, r"--map arch=modle: 'modle' is not a search-space field"),
    ({"lr_typo": "lr"}, {}, r"--map lr_typo=lr: study 'cxr' has no param 'lr_typo'; its params: arch, bs"),
    ({"arch": "model", "bs": "model"}, {}, r"'arch' and 'bs' both map onto model"),
    (MAPPING, {"lr": 0.1}, r"lr is both mapped \(from param 'learning_rate'\) and fixed"),
])
def test_mapping_mistakes(tmp_path, dataset, mapping, fixed, message) -> None:
    study = import_optuna.load_study(_study(tmp_path / "study.db"), "cxr")
    with pytest.raises(RunImportError, match=message):
        import_optuna.records_from_study(study, dataset, mapping, fixed | {k: v for k, v in FIXED.items()
                                                                     if k not in mapping.values()})


def test_value_outside_the_space_names_trial_and_param(tmp_path, dataset) -> None:
    rows = [{"arch": "resnet18", "learning_rate": 1e-3, "bs": 32, "n_epochs": 10, "dropout": 0.1, "_v": 0.8},
            {"arch": "resnet18", "learning_rate": 1e-3, "bs": 100, "n_epochs": 10, "dropout": 0.1, "_v": 0.7}]
    study = import_optuna.load_study(_study(tmp_path / "study.db", trials=rows), "cxr")
    with pytest.raises(RunImportError, match=r"^trial 1: param 'bs' \(batch_size\): 100 is not allowed; "
                                             r"allowed: one of 8, 16, 32"):
        import_optuna.records_from_study(study, dataset, MAPPING, FIXED)
    rows[1] |= {"bs": 32, "arch": "convnext"}
    study = import_optuna.load_study(_study(tmp_path / "other.db", trials=rows), "cxr")
    with pytest.raises(RunImportError, match=r"^trial 1: param 'arch' \(model\): 'convnext' is not allowed"):
        import_optuna.records_from_study(study, dataset, MAPPING, FIXED)


def test_objective_direction_and_multi_objective(tmp_path, dataset) -> None:
    study = import_optuna.load_study(_study(tmp_path / "min.db", direction="minimize"), "cxr")
    with pytest.raises(RunImportError, match=r"study 'cxr' minimizes its objective, so its value is not "
                                             r"an accuracy: if it is an error rate .* --value-is test_error"):
        import_optuna.records_from_study(study, dataset, MAPPING, FIXED)
    errors = import_optuna.records_from_study(study, dataset, MAPPING, FIXED, value_is="val_error")
    assert sorted(r.outcome.val_acc for r in errors.records if r.status == "ok") == pytest.approx(
        [0.78, 0.81, 0.86])

    multi = import_optuna.load_study(_study(tmp_path / "multi.db", direction=["minimize", "minimize"]), "cxr")
    with pytest.raises(RunImportError, match=r"study 'cxr' has 2 objectives \(0: #0 \(minimize\), 1: #1 "
                                             r"\(minimize\)\); say which one is the accuracy with --objective"):
        import_optuna.records_from_study(multi, dataset, MAPPING, FIXED)
    result = import_optuna.records_from_study(multi, dataset, MAPPING, FIXED, objective=0, value_is="test_error")
    assert sorted(r.outcome.test_acc for r in result.records if r.status == "ok") == pytest.approx(
        [0.78, 0.81, 0.86])
    with pytest.raises(RunImportError, match=r"gives test_acc 12, not a fraction in \[0, 1\]"):
        import_optuna.records_from_study(multi, dataset, MAPPING, FIXED, objective=1, value_is="test_acc")
    with pytest.raises(RunImportError, match=r"maximizes its objective: --value-is test_error"):
        import_optuna.records_from_study(import_optuna.load_study(_study(tmp_path / "max.db"), "cxr"), dataset,
                                   MAPPING, FIXED, value_is="test_error")


def test_storage_and_study_errors(tmp_path) -> None:
    with pytest.raises(RunImportError, match="no such SQLite file"):
        import_optuna.load_study(f"sqlite:///{tmp_path / 'missing.db'}", "cxr")
    assert not (tmp_path / "missing.db").exists()  # Optuna would have created it
    RunStore(tmp_path / "runs.sqlite")
    with pytest.raises(RunImportError, match="not an Optuna storage"):
        import_optuna.load_study(str(tmp_path / "runs.sqlite"), None)
    url = _study(tmp_path / "study.db")
    with pytest.raises(RunImportError, match=r"--study 'nope': no such study in the storage; it holds: cxr"):
        import_optuna.load_study(url, "nope")
    assert import_optuna.load_study(str(tmp_path / "study.db"), None).study_name == "cxr"


def test_fixed_values_are_typed_and_checked() -> None:
    assert imports.parse_fixed(["pretrained=false", "epochs=30", "lr=3e-4", "model=resnet18"]) == {
        "pretrained": False, "epochs": 30, "lr": 3e-4, "model": "resnet18"}
    with pytest.raises(RunImportError, match=r"--fixed colour=red: 'colour' is not a search-space field"):
        imports.parse_fixed(["colour=red"])
    with pytest.raises(RunImportError, match=r"--fixed epochs: 2.5 is not a whole number"):
        imports.parse_fixed(["epochs=2.5"])
    with pytest.raises(RunImportError, match=r"--fixed resolution: 100 is not allowed"):
        imports.parse_fixed(["resolution=100"])
    with pytest.raises(RunImportError, match=r"--map 'lr': expected NAME=VALUE"):
        imports.parse_pairs(["lr"], "--map")


def test_dataset_spec_is_measured(root) -> None:
    data = imports.user_dataset(str(root / "bands.npz"))
    assert data.meta_features.n_classes == 3 and data.meta_features.n_instances == 45
    with pytest.raises(RunImportError, match="needs a name"):
        imports.user_dataset(TRAITS)


# --- CSV ------------------------------------------------------------------------------------------

HEADER = ["dataset", "n_images", "n_classes", "image_size", "modality", "model", "lr", "epochs",
          "batch_size", "accuracy", "resolution", "pretrained", "status", "val_accuracy"]
GOOD = [
    ["my-xrays", "3000", "3", "512", "x-ray", "resnet18", "0.001", "10", "32", "0.81", "224", "true", "", ""],
    ["my-xrays", "3000", "3", "512", "x-ray", "resnet50", "3e-4", "20", "64", "0.86", "224", "", "", "0.88"],
    ["skin", "900", "7", "64", "dermoscopy", "efficientnet_b0", "1e-3", "30", "32", "", "", "false",
     "failed", ""],
]


def _csv(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows([header, *rows])
    return path


def test_csv_of_user_runs(tmp_path) -> None:
    path = _csv(tmp_path / "mine.csv", GOOD)
    store = RunStore(tmp_path / "runs.sqlite")
    assert import_csv.import_path(store, path) == (3, "user")
    by_model = {r.config.model: r for r in store.query(source="user")}
    a, b, c = by_model["resnet18"], by_model["resnet50"], by_model["efficientnet_b0"]
    assert a.outcome.test_acc == 0.81 and a.config.resolution == 224 and a.dataset_id == "user:my-xrays"
    assert b.outcome.val_acc == 0.88 and b.config.pretrained and b.config.optimizer == "adamw"
    assert c.status == "failed" and c.config.resolution == 64 and not c.config.pretrained  # image size
    assert c.meta_features.n_classes == 7 and c.meta_features.modality == "dermoscopy"
    assert import_csv.import_path(store, path) == (0, "user")  # stable ids: no duplicates
    link = tmp_path / "link.csv"
    os.symlink(path, link)
    assert import_csv.import_path(store, link) == (0, "user")  # a link is followed, to the same runs


@pytest.mark.parametrize(("rows", "message"), [
    ([GOOD[0], GOOD[1][:6] + ["fast"] + GOOD[1][7:]], r"row 2, column lr: 'fast' is not a number"),
    ([GOOD[0], GOOD[1][:6] + ["5"] + GOOD[1][7:]], r"row 2, column lr: 5.0 is not allowed; allowed: a number in"),
    ([GOOD[0][:9] + ["91.2"] + GOOD[0][10:]], r"row 1, column accuracy: '91.2' is not a fraction in \[0, 1\] "
                                              r"\(a percentage\? write 0.912, not 91.2\)"),
    ([GOOD[0][:9] + [""] + GOOD[0][10:]], r"row 1, column accuracy: is empty, and a run with status 'ok'"),
    ([GOOD[0][:5] + ["vgg99"] + GOOD[0][6:]], r"row 1, column model: 'vgg99' is not allowed"),
    ([GOOD[0][:2] + ["4000"] + GOOD[0][3:]], r"row 1, column n_classes: "),
    ([GOOD[0][:3] + ["100"] + GOOD[0][4:10] + [""] + GOOD[0][11:]],
     r"row 1, column resolution: empty, and image_size 100 is no allowed training resolution"),
    ([GOOD[0], GOOD[1][:1] + ["2000"] + GOOD[1][2:]], r"row 2: dataset 'my-xrays' has other traits here "
                                                      r"than in row 1"),
    ([GOOD[0], GOOD[0][:4]], r"row 2: 4 cells, the header has 14"),
    ([GOOD[2][:12] + ["lost"] + GOOD[2][13:]], r"row 1, column status: 'lost'; use one of ok, failed"),
])
def test_csv_bad_row_imports_nothing(tmp_path, rows, message) -> None:
    store = RunStore(tmp_path / "runs.sqlite")
    with pytest.raises(RunImportError, match=f"mine.csv: {message}.*nothing was imported"):
        import_csv.import_path(store, _csv(tmp_path / "mine.csv", rows))
    assert len(store) == 0


def test_csv_file_checks(tmp_path) -> None:
    with pytest.raises(RunImportError, match=r"unknown column 'learning_rate'; columns: dataset, n_images"):
        import_csv.user_csv_records(_csv(tmp_path / "a.csv", [], header=HEADER + ["learning_rate"]))
    with pytest.raises(RunImportError, match=r"missing required column\(s\) accuracy"):
        import_csv.user_csv_records(_csv(tmp_path / "b.csv", [], header=HEADER[:9]))
    with pytest.raises(RunImportError, match=r"column 'lr' appears twice"):
        import_csv.user_csv_records(_csv(tmp_path / "c.csv", [], header=HEADER + ["lr"]))
    big = _csv(tmp_path / "big.csv", GOOD * 20)
    with pytest.raises(RunImportError, match=r"big.csv: 0.0 MB; a CSV of runs may hold at most 0 MB"):
        import_csv.user_csv_records(big, limit=1000)
    with pytest.raises(RunImportError, match="not a regular file"):
        import_csv.user_csv_records(tmp_path)
    timed = _csv(tmp_path / "t.csv", [GOOD[0] + ["120"]], header=HEADER + ["train_seconds"])
    with pytest.raises(RunImportError, match="row 1, column train_seconds: needs the device column"):
        import_csv.user_csv_records(timed)
    with_threads = _csv(tmp_path / "th.csv", [GOOD[0] + ["120", "cpu", "4"]],
                        header=HEADER + ["train_seconds", "device", "threads"])
    (record,) = import_csv.user_csv_records(with_threads)
    assert record.provenance.threads == 4 and record.outcome.train_seconds == 120
    zero = _csv(tmp_path / "z.csv", [GOOD[0] + ["120", "cpu", "0"]],
                header=HEADER + ["train_seconds", "device", "threads"])
    with pytest.raises(RunImportError, match="row 1, column threads: "):
        import_csv.user_csv_records(zero)


def test_export_csv_still_imports_as_before(tmp_path) -> None:
    source = RunStore(tmp_path / "a.sqlite")
    source.add_many(synthetic_records(per_dataset=3))
    source.export(tmp_path / "runs.csv")
    target = RunStore(tmp_path / "b.sqlite")
    assert import_csv.import_path(target, tmp_path / "runs.csv") == (18, "export")
    assert target.summary()["source"] == source.summary()["source"]
    with pytest.raises(RunImportError, match="--value-is applies to a CSV of your runs"):
        import_csv.import_path(target, tmp_path / "runs.csv", value_is="val_acc")


# --- as evidence -----------------------------------------------------------------------------------

def test_support_counts_the_users_runs() -> None:
    records = synthetic_records(per_dataset=6)
    rows = [record_to_row(r) for r in records if r.status == "ok"]
    rows[0]["prov.source"] = "user"
    import pandas as pd

    evidence = Evidence.from_frame(pd.DataFrame(rows))
    cfg = TrainConfig(**{k.removeprefix("cfg."): v for k, v in rows[0].items() if k.startswith("cfg.")})
    support = evidence.support(cfg)
    assert support.n_user == 1 and support.sources["user"] == 1
    assert ", 1 of them yours (" in support.text()
    assert "yours" not in Support(n_runs=2, n_datasets=1, sources={"own": 2}).text()


def _user_csv_of_every_config(path: Path) -> Path:
    """A user CSV with one run of every synthetic config (so every backed pick has user backing)."""
    header = ["dataset", "n_images", "n_classes", "image_size", "modality", "channels", *TrainConfig.model_fields,
              "accuracy"]
    rows = []
    for r in synthetic_records(per_dataset=12):
        if r.status == "ok":
            acc = r.outcome.test_acc or r.outcome.val_acc
            rows.append(["mine", "1500", "3", "128", "x-ray", "1",
                         *[str(v) for v in r.config.model_dump().values()], f"{acc:.4f}"])
    return _csv(path, rows, header)


def test_recommendation_reports_the_users_runs(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("METALLMIX_EMBEDDINGS", "hashing")
    clear_cache()
    store = ready_store(tmp_path / "runs.sqlite")
    meta = meta_from_traits({"n_instances": 1500, "n_classes": 3, "height": 128, "modality": "x-ray"})
    before = recommend(meta, store=store.path)
    assert "user" not in before.learner["n_records"] and before.best.support.n_user == 0
    small_fits(monkeypatch)  # the refit after the import stays quick
    added, kind = import_csv.import_path(store, _user_csv_of_every_config(tmp_path / "mine.csv"))
    assert kind == "user" and added > 50
    rec = recommend(meta, store=store.path)
    assert rec.learner["n_records"]["user"] == added  # refitted: the learner counts them
    n_user = rec.best.support.n_user
    assert n_user >= 1 and f", {n_user} of them yours" in rec.evidence_lines()[0]
    assert "of them yours" in rec.to_markdown()
    assert '"n_user":' in rec.model_dump_json() and np.isfinite(rec.best.predicted_acc)
    clear_cache()


def test_user_runs_weigh_as_own_runs() -> None:
    from knowledge.metalearner.targets import weight_of

    assert weight_of({"own": 2.0, "published": 1.0}, "user") == 2.0
    assert weight_of({"own": 2.0, "user": 3.0}, "user") == 3.0 and weight_of({}, "user") == 1.0
