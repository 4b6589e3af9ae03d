"""`metallmix train`: a real tiny run end to end, JSON output, stored records and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from knowledge.runs.store import RunStore
from ui.cli import main


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def npz(tmp_path: Path) -> Path:
    """A MedMNIST-layout file: 16x16 gray images, 3 classes, with val and test splits."""
    rng = np.random.default_rng(0)

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(n) % 3
        x = rng.integers(0, 60, (n, 16, 16), dtype=np.uint8)
        for i, c in enumerate(y):
            x[i, :, c * 5:c * 5 + 5] = 200
        return x, y.reshape(-1, 1)

    arrays = {}
    for name, n in (("train", 60), ("val", 15), ("test", 15)):
        arrays[f"{name}_images"], arrays[f"{name}_labels"] = split(n)
    path = tmp_path / "toy.npz"
    np.savez(path, **arrays)
    return path


ARGS = ["--model", "resnet18", "--no-pretrained", "--epochs", "1", "--batch-size", "32", "--threads", "1"]


def test_train_json_is_stored(npz, capsys):
    assert main(["train", str(npz), *ARGS, "--seed", "2", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["status"] == "ok" and record["config"]["model"] == "resnet18"
    assert record["provenance"]["seed"] == 2 and 0 <= record["outcome"]["test_acc"] <= 1
    stored = RunStore().get(record["run_id"])  # the default store ($METALLMIX_STORE in tests)
    assert stored.outcome.test_acc == record["outcome"]["test_acc"]


def test_train_table_and_explicit_store(npz, tmp_path, capsys):
    store = tmp_path / "mine.sqlite"
    assert main(["train", str(npz), *ARGS, "--store", str(store), "--scheme", "linear_probing"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "status" in out and "linear_probing" in out
    assert len(RunStore(store)) == 1 and len(RunStore()) == 0


def test_timeout_is_stored_with_exit_code_1(npz, capsys):
    assert main(["train", str(npz), *ARGS, "--time-budget", "1e-9", "--json"]) == 1
    record = json.loads(capsys.readouterr().out)
    assert record["status"] == "timeout"
    assert RunStore().get(record["run_id"]).status == "timeout"


@pytest.mark.parametrize("args, message", [
    (["--model", "alexnet"], "alexnet has no timm model; the launcher cannot train it"),
    (["--model", "resnet18", "--lr", "7"], "lr: 7.0 is not allowed"),
    (["--model", "nope"], "model: 'nope' is not allowed"),
])
def test_bad_input_is_one_line(npz, capsys, args, message):
    assert main(["train", str(npz), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert len(RunStore()) == 0


def test_missing_dataset_is_one_line(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.npz"), *ARGS]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "nope.npz" in err


@pytest.mark.slow
@pytest.mark.parametrize("signame, code", [("SIGINT", 130), ("SIGTERM", 143)])
def test_an_interrupt_cancels_and_stores(npz, tmp_path, signame, code):
    """Ctrl-C (SIGINT) and SIGTERM (kill, a scheduler, a container stop) end the run alike: a
    `cancelled` record is stored and printed; the exit code is 128 + the signal."""
    import os
    import signal
    import subprocess
    import sys
    import time

    store = tmp_path / "runs.sqlite"
    env = dict(os.environ, METALLMIX_STORE=str(store), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from ui.cli import main; sys.exit(main())",
         "train", str(npz), *ARGS[:-4], "--epochs", "200", "--threads", "1", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    deadline = time.monotonic() + 120
    for line in proc.stderr:  # wait until training runs
        if "epoch 1/200" in line or time.monotonic() > deadline:
            break
    proc.send_signal(getattr(signal, signame))
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    record = json.loads(out)
    assert record["status"] == "cancelled" and record["outcome"]["epochs_completed"] < 200
    assert RunStore(store).get(record["run_id"]).status == "cancelled"


def _npz_with(path: Path, **labels: list[int]) -> Path:
    """A copy of the toy file with some splits' labels replaced (`train=[0, 99]`: cycled)."""
    arrays = dict(np.load(path))
    for split, values in labels.items():
        n = len(arrays[f"{split}_labels"])
        arrays[f"{split}_labels"] = np.resize(np.asarray(values), n).reshape(-1, 1)
    out = path.with_name(f"relabelled-{'-'.join(labels)}.npz")
    np.savez(out, **arrays)
    return out


@pytest.mark.parametrize("labels, message", [
    (dict(train=[0, 99], val=[0, 99], test=[0, 99]), "train labels must be the class numbers 0..1"),
    (dict(train=[0, 1], val=[0, 1], test=[0, 5]), "test labels include 5, which is not one of the 2 "
                                                  "training classes 0..1"),
])
def test_labels_outside_the_classes_are_one_error_line_and_nothing_is_stored(npz, tmp_path, capsys, labels,
                                                                           message):
    store = tmp_path / "mine.sqlite"
    assert main(["train", str(_npz_with(npz, **labels)), *ARGS, "--store", str(store), "--json"]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("error: ") and message in err and "\n" not in err
    assert captured.out == "" and len(RunStore(store)) == 0


@pytest.mark.parametrize("budget", ["-5", "0", "inf", "nan"])
def test_time_budget_must_be_positive_and_finite(npz, capsys, budget):
    assert main(["train", str(npz), *ARGS, "--time-budget", budget]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: time budget") and "positive, finite number of seconds" in err
    assert "\n" not in err and len(RunStore()) == 0


def test_sigterm_handler_is_restored_after_the_command(npz, capsys):
    import signal

    before = signal.getsignal(signal.SIGTERM)
    assert main(["train", str(npz), *ARGS, "--no-store", "--json"]) == 0
    assert signal.getsignal(signal.SIGTERM) is before
