"""The end-to-end benchmark on a tiny .npz and the synthetic run store (tests/knowledge).

One real pipeline run (seconds of training on 48 images of 12 px) checks the report and that the
held-out base dataset never reaches the meta-learner's fit; the CLI test swaps the trainer for a
fake one (the wiring, not the training, is under test there).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import eval.lodo as lodo
from eval.e2e import published_results, run_e2e, to_markdown
from eval.e2e.report import figure
from knowledge.datasets.loader import load_dataset
from knowledge.errors import DatasetError
from knowledge.runs.record import Outcome, Provenance, RunRecord
from knowledge.runs.store import RunStore
from knowledge.sweeps import backend as sweep_backend
from knowledge.sweeps.backend import Backend
from tests.knowledge.recommend_fixtures import PER_DATASET, store_with_runs
from ui.cli import main


def write_npz(path: Path, seed: int = 0) -> Path:
    """A tiny two-class gray dataset in MedMNIST layout (class 1 is darker: learnable)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", 48), ("val", 16), ("test", 16)):
        labels = np.arange(n) % 2
        images = rng.integers(100, 255, size=(n, 12, 12), dtype=np.uint8)
        images[labels == 1] //= 3
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels.reshape(-1, 1)
    np.savez(path, **arrays)
    return path


class Stages:
    """A Progress that remembers the stages."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.events = 0

    def stage(self, dataset: str, text: str) -> None:
        self.lines.append(text)

    def event(self, event: object) -> None:
        self.events += 1


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One real run: `alpha.npz` holds out the synthetic base dataset 'alpha'."""
    tmp = tmp_path_factory.mktemp("e2e")
    fitted: list[set[str]] = []
    original = lodo.MetaLearner.fit

    def spy(self, frame, **kwargs):  # noqa: ANN001, ANN202
        fitted.append(set(frame["base_dataset"]))
        return original(self, frame, **kwargs)

    stages = Stages()
    with pytest.MonkeyPatch.context() as mp:
        for var, sub in (("METALLMIX_HOME", "home"), ("METALLMIX_DATA", "data")):
            mp.setenv(var, str(tmp / sub))
        mp.setattr(lodo.MetaLearner, "fit", spy)
        store = store_with_runs(tmp / "runs.sqlite")
        report = run_e2e([str(write_npz(tmp / "alpha.npz"))], store=store, budget="CPU only, 2 seconds",
                         limit_factor=1.0, default_limit_s=1.5, tpe_warmup=2, tpe_max_trials=2,
                         num_threads=1, progress=stages)
    return {"report": report, "fitted": fitted, "store": store, "stages": stages, "tmp": tmp}


@pytest.mark.slow
def test_the_held_out_base_never_reaches_the_fit(real: dict) -> None:
    entry = real["report"]["datasets"][0]
    assert entry["base_dataset"] == "alpha"
    fit = entry["fit"]
    assert fit["held_out"] == ["alpha"]
    assert sum(fit["n_excluded"].values()) == PER_DATASET  # every alpha record, own and published
    assert set(fit["n_excluded"]) == {"own", "published"}
    assert "alpha" not in fit["train_bases"] and len(fit["train_bases"]) == 5
    assert real["fitted"] and all(bases and "alpha" not in bases for bases in real["fitted"])
    assert fit["n_records"] == 5 * PER_DATASET
    rec = entry["recommendation"]
    assert all("alpha" not in card for card in rec["similar_runs"])


@pytest.mark.slow
def test_every_arm_trained_and_stored_with_an_e2e_tag(real: dict) -> None:
    entry = real["report"]["datasets"][0]
    runs = entry["runs"]
    rec, default, tpe = runs["recommended"], runs["default"], runs["tpe"]
    for run in (rec, default, tpe["best"]):
        assert run["status"] in ("ok", "timeout")
        assert 0.0 <= run["test_acc"] <= 1.0 and run["train_seconds"] > 0
    assert rec["config"] == entry["recommendation"]["best"]["config"] or entry["recommendation"]["skipped"]["count"]
    assert rec["time_limit_s"] == pytest.approx(2.0)
    # the default arm: the same model, the search space's defaults
    assert default["config"]["model"] == rec["config"]["model"]
    assert {k: default["config"][k] for k in ("scheme", "resolution", "lr", "epochs", "batch_size")} == {
        "scheme": "end_to_end", "resolution": 28, "lr": 1e-3, "epochs": 10, "batch_size": 64}
    # TPE: trials until the recommended run's training time is spent (or the trial limit)
    assert tpe["budget_seconds"] == pytest.approx(rec["train_seconds"], abs=1e-3)
    assert 1 <= tpe["n_trials"] == len(tpe["trials"]) <= 2
    assert tpe["train_seconds"] == pytest.approx(sum(t["train_seconds"] for t in tpe["trials"]), abs=0.01)
    if tpe["stopped"] == "budget":
        assert tpe["budget_seconds"] - tpe["train_seconds"] < max(1.0, 0.02 * tpe["budget_seconds"])
    evaluated = [t for t in tpe["trials"] if t["val_acc"] is not None and t["test_acc"] is not None]
    assert tpe["best"]["val_acc"] == max(t["val_acc"] for t in evaluated)
    dataset_id = entry["dataset_id"]
    tags = sorted(r.provenance.study for r in real["store"].query() if (r.provenance.study or "").startswith("e2e:"))
    assert tags == sorted([f"e2e:{dataset_id}:recommended", f"e2e:{dataset_id}:default",
                           *(f"e2e:{dataset_id}:tpe#{t['number']}" for t in tpe["trials"])])
    assert real["stages"].events > 0 and any("recommendation" in s for s in real["stages"].lines)


@pytest.mark.slow
def test_comparison_gaps_and_ratios(real: dict) -> None:
    report = real["report"]
    entry = report["datasets"][0]
    c, runs = entry["comparison"], entry["runs"]
    rec_acc = runs["recommended"]["test_acc"]
    assert c["test_acc"]["tpe"] == runs["tpe"]["best"]["test_acc"]
    assert c["gap_points"]["default"] == pytest.approx(100 * (rec_acc - runs["default"]["test_acc"]), abs=0.01)
    assert c["gap_points"]["tpe"] == pytest.approx(100 * (rec_acc - c["test_acc"]["tpe"]), abs=0.01)
    assert c["time_ratio"]["default/recommended"] == pytest.approx(
        runs["default"]["train_seconds"] / runs["recommended"]["train_seconds"], rel=1e-2)
    assert entry["majority_class_acc"] == 0.5 and c["gap_points"]["majority class"] == pytest.approx(
        100 * (rec_acc - 0.5), abs=0.01)  # 24 + 24 training images: class 0; half the test set
    assert entry["published"] == [] and any("no published" in n for n in entry["notes"])
    assert report["settings"]["seed"] == 0 and report["settings"]["budget"] == "CPU only, 2 seconds"
    text = to_markdown(report)
    assert "alpha" in text and "| dataset |" in text and "Δ vs TPE" in text
    png = figure(report, real["tmp"] / "e2e.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    json.dumps(report)  # JSON-ready


def test_published_rows_of_a_medmnist_dataset() -> None:
    rows = published_results("BreastMNIST")
    methods = [r.method for r in rows]
    assert "ResNet-18 (28)" in methods and "Google AutoML Vision" in methods and len(rows) == 7
    resnet = rows[methods.index("ResNet-18 (28)")]
    assert resnet.acc == pytest.approx(0.863) and resnet.auc == pytest.approx(0.901)
    assert "100 epochs" in resnet.note
    assert published_results("digits") == []


def test_a_broken_published_table_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "v2.csv"
    bad.write_text("dataset,method\nBreastMNIST,x\n")
    with pytest.raises(DatasetError, match="lacks column"):
        published_results("breastmnist", bad)


# --- the command ---------------------------------------------------------------------------------

def fake_train(dataset, config, *, seed=0, time_budget_s=None, num_threads=None, progress=None,  # noqa: ANN001, ANN201
               cancel=None, store=None, study=None, device=None):
    """A run in no time: accuracy from the learning rate, 2 s of 'training' (TPE trials: 1 s)."""
    acc = 0.6 + 0.3 * math.exp(-(math.log10(config.lr) + 3) ** 2)
    record = RunRecord(
        dataset_id=dataset.id, base_dataset=dataset.base, meta_features=dataset.meta_features(),
        config=config, outcome=Outcome(val_acc=acc, test_acc=acc - 0.01, test_auc=acc,
                                       train_seconds=1.0 if ":tpe#" in (study or "") else 2.0,
                                       epochs_completed=config.epochs),
        provenance=Provenance(source="own", seed=seed, study=study, device="fake"))
    if store is not None:
        store.add(record)
    return record


FAKE = Backend(load_dataset=load_dataset, train=fake_train, pretrained_available=lambda model: False)


def test_cli_writes_the_report_and_honours_exclude(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(sweep_backend, "REAL", FAKE)
    store = store_with_runs(tmp_path / "runs.sqlite")
    data = write_npz(tmp_path / "tiny.npz")
    out, md = tmp_path / "res" / "e2e.json", tmp_path / "res" / "e2e.md"
    rc = main(["eval", "e2e", str(data), "--exclude", "Beta", "--store", str(store.path),
               "--budget", "CPU only, 10 seconds", "--tpe-max-trials", "2", "--out", str(out),
               "--markdown", str(md), "--json", "--no-progress"])
    assert rc == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    entry = printed["datasets"][0]
    assert entry["fit"]["held_out"] == ["beta", "tiny"]
    assert sum(entry["fit"]["n_excluded"].values()) == PER_DATASET  # 'tiny' is not in the store
    assert any("no record of base dataset 'tiny'" in n for n in entry["notes"])
    assert entry["runs"]["recommended"]["config"]["pretrained"] is False  # no weights: skipped
    assert entry["runs"]["tpe"]["n_trials"] == 2 and entry["comparison"]["time_ratio"]["tpe/recommended"] == 1.0
    assert md.read_text().startswith("End-to-end benchmark")
    assert out.with_suffix(".png").is_file()
    assert len(RunStore(store.path).query()) == 6 * PER_DATASET + 4


@pytest.mark.parametrize("args, message", [
    (["no-such-dataset"], "unknown dataset 'no-such-dataset'"),
    (["{npz}", "--exclude", "nothing"], "--exclude 'nothing' names no base dataset"),
    (["{npz}", "--budget", "whenever"], "cannot read a compute budget"),
])
def test_cli_bad_input_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture,
                                         args: list[str], message: str) -> None:
    store = store_with_runs(tmp_path / "runs.sqlite")
    npz = str(write_npz(tmp_path / "tiny.npz"))
    argv = [a.replace("{npz}", npz) for a in args]
    rc = main(["eval", "e2e", *argv, "--store", str(store.path), "--out", str(tmp_path / "e.json"),
               "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and err.startswith("error: ") and message in err
    assert not (tmp_path / "e.json").exists()
    assert len(RunStore(store.path).query()) == 6 * PER_DATASET  # nothing was trained
