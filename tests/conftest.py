"""Shared fixtures. Tests never need ../shared; those that use it skip cleanly without it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("METALLMIX_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own MetaLLMiX home, store and data dir: the user's files are never touched."""
    home = tmp_path_factory.mktemp("metallmix-home")
    monkeypatch.setenv("METALLMIX_HOME", str(home))
    monkeypatch.setenv("METALLMIX_STORE", str(home / "runs.sqlite"))
    monkeypatch.setenv("METALLMIX_DATA", str(home / "data"))
    return home


def shared_file(*parts: str) -> Path:
    """A file under ../shared/data, or skip the test when it is not there."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not available: {path}")
    return path
