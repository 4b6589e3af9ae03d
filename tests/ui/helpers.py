"""Helpers for the web app's tests: an `AdvisorApp` over a scripted model file, and a tiny .npz dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ui.app import AdvisorApp


def scripted(tmp_path: Path, replies: list) -> str:
    path = tmp_path / "script.json"
    path.write_text(json.dumps(replies))
    return f"scripted:{path}"


def make_app(tmp_path: Path, store: Path, replies: list) -> AdvisorApp:
    return AdvisorApp(scripted(tmp_path, replies), store, work_dir=tmp_path / "ui")


def tiny_npz(path: Path, n: int = 40) -> Path:
    rng = np.random.default_rng(0)
    arrays = {}
    for split, size in (("train", n), ("val", 10), ("test", 10)):
        arrays[f"{split}_images"] = rng.integers(0, 255, (size, 28, 28), dtype=np.uint8)
        arrays[f"{split}_labels"] = (np.arange(size) % 2).reshape(-1, 1).astype(np.uint8)
    np.savez(path, **arrays)
    return path
