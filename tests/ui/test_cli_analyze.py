"""`metallmix analyze`: JSON and table output, and one-line errors with exit code 2."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from knowledge.metafeatures import MetaFeatures
from tests.helpers import REPO, shared_file
from ui.cli import main

EXTRA_KEYS = {"dataset_id", "base", "variant", "medical", "n_val", "n_test"}


def _npz(path: Path) -> Path:
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [20, 10, 5])
    np.savez(path, train_images=rng.integers(0, 256, (35, 9, 7, 3), dtype=np.uint8), train_labels=y,
             test_images=np.zeros((3, 9, 7, 3), np.uint8), test_labels=np.array([0, 1, 2]))
    return path


def test_analyze_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _npz(tmp_path / "toy.npz")
    assert main(["analyze", str(path), "--json", "--modality", "fundus"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == set(MetaFeatures.model_fields) | EXTRA_KEYS
    assert (out["n_instances"], out["n_classes"], out["imbalance_ratio"]) == (35, 3, 4.0)
    assert (out["height"], out["width"], out["channels"]) == (9, 7, 3)
    assert out["modality"] == "fundus" and out["task"] == "multi-class"
    assert out["dataset_id"] == str(path.resolve()) and out["base"] == "toy"
    assert out["variant"] is None and out["medical"] is True
    assert (out["n_val"], out["n_test"]) == (0, 3)


def test_analyze_json_variant(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", "digits?n=100&imbalance=0.05", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["dataset_id"] == "digits?imbalance=0.05&n=100&seed=0"
    assert out["variant"] == "imbalance=0.05&n=100&seed=0" and out["base"] == "digits"
    assert out["n_instances"] == 100 and out["imbalance_ratio"] >= 10 and out["medical"] is False


def test_analyze_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(_npz(tmp_path / "toy.npz"))]) == 0
    out = capsys.readouterr().out
    assert "imbalance_ratio" in out and "class_entropy" in out and "35" in out
    assert "unknown" in out and "--modality" in out  # no modality known for this file
    assert "train 35" in out and "test 3" in out


def test_analyze_pneumoniamnist(capsys: pytest.CaptureFixture[str]) -> None:
    path = shared_file("medmnist", "pneumoniamnist.npz")
    assert main(["analyze", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["n_instances"], out["n_classes"], out["modality"]) == (4708, 2, "x-ray")
    assert round(out["imbalance_ratio"], 3) == 2.878 and out["class_entropy"] == 0.8235
    assert (out["n_val"], out["n_test"]) == (524, 624)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.npz"], "error: dataset not found: missing.npz"),
        (["digits", "--modality", "sonar"], "error: unknown modality 'sonar'; choose one of"),
        (["digits?size=3"], "error: unknown variant key 'size'; allowed: n, frac"),
        (["nosuchsource"], "error: unknown dataset 'nosuchsource'"),
    ],
)
def test_analyze_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", *args]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(message) and captured.err.count("\n") == 1
    assert captured.out == ""


def test_analyze_corrupt_file_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"garbage")
    assert main(["analyze", str(bad)]) == 2
    assert "broken.npz" in capsys.readouterr().err


def test_analyze_subprocess_has_no_traceback(tmp_path: Path) -> None:
    exe = shutil.which("metallmix")
    cmd = ([exe] if exe else [sys.executable, "-c", "import sys; from ui.cli import main; sys.exit(main())"])
    proc = subprocess.run([*cmd, "analyze", "missing.npz"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: dataset not found: missing.npz"
    assert "Traceback" not in proc.stderr + proc.stdout


def test_analyze_reads_the_path_its_user_names(tmp_path: Path, monkeypatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """The command line is the user's own shell: no data roots apply (not even the working
    directory's absence from them), and a class folder linked from elsewhere is read."""
    from PIL import Image

    monkeypatch.setenv("METALLMIX_DATA_ROOTS", str(tmp_path / "elsewhere"))
    pets, others = tmp_path / "pets", tmp_path / "others" / "dog"
    for folder in (pets / "cat", others):
        folder.mkdir(parents=True)
        for i in range(3):
            Image.new("L", (6, 5), color=40 * i).save(folder / f"{i}.png")
    (pets / "dog").symlink_to(others, target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    assert main(["analyze", "pets", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["n_instances"], out["n_classes"]) == (6, 2)
    assert out["dataset_id"] == str(pets.resolve())


# --- class names with a comma stay one name (issue 16 item 7) -----------------------------------------

BREAST_LABELS = {"0": "malignant", "1": "normal, benign"}  # the MedMNIST INFO "label" mapping of BreastMNIST


def test_class_names_text_keeps_a_comma_inside_one_name() -> None:
    from ui.cli.analyze import class_names_text

    assert class_names_text(["malignant", "normal, benign"]) == "malignant | normal, benign"
    many = class_names_text([f"c{i}" for i in range(15)])
    assert many.startswith("c0 | c1 |") and many.endswith("c11 | … (3 more)") and "c12" not in many


def test_analyze_table_shows_a_class_name_with_a_comma_as_one_name(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from knowledge.datasets import npz

    # a small BreastMNIST-named file; its class names come from the INFO-style mapping
    monkeypatch.setattr(npz, "_medmnist_cards",
                        lambda: {"breastmnist": {"label": BREAST_LABELS, "task": "binary-class"}})
    monkeypatch.setenv("COLUMNS", "80")
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], [12, 30]).reshape(-1, 1).astype(np.uint8)
    path = tmp_path / "breastmnist.npz"
    np.savez(path, train_images=rng.integers(0, 256, (42, 28, 28), dtype=np.uint8), train_labels=y)
    assert main(["analyze", str(path)]) == 0
    out = capsys.readouterr().out
    assert "classes (2): malignant | normal, benign" in out
    assert "malignant, normal" not in out  # not three names


def test_analyze_breastmnist_class_names(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = shared_file("medmnist", "breastmnist.npz")
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["analyze", str(path)]) == 0
    out = capsys.readouterr().out
    assert "classes (2): malignant | normal, benign" in out and "n_classes" in out
