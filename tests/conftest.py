"""Shared fixtures: every test's own MetaLLMiX home, and the small ready run store with the advisor's
tools (scripted-LLM tests of the agent, the tools, the app and the security checks).

Plain helpers are in tests/helpers.py (shared data, free ports) and tests/agent/helpers.py (the
scripted LLM); a package's own fixtures are in its conftest.py or its test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from knowledge.runs.store import RunStore
    from tests.agent.helpers import FakeLaunch


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own MetaLLMiX home, store and data dir: the user's files are never touched."""
    home = tmp_path_factory.mktemp("metallmix-home")
    monkeypatch.setenv("METALLMIX_HOME", str(home))
    monkeypatch.setenv("METALLMIX_STORE", str(home / "runs.sqlite"))
    monkeypatch.setenv("METALLMIX_DATA", str(home / "data"))
    return home


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunStore]:
    """A ready run store (the synthetic runs and their fitted learner) at tmp_path/runs.sqlite, with
    hashing embeddings; the advisor's caches are cleared before and after the test."""
    from knowledge.recommend import clear_cache
    from tests.knowledge.recommend_fixtures import ready_store

    monkeypatch.setenv("METALLMIX_EMBEDDINGS", "hashing")
    clear_cache()
    yield ready_store(tmp_path / "runs.sqlite")
    clear_cache()


@pytest.fixture
def store_path(store: RunStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`store`'s file (what the session and the web app take), with tmp_path/data as the only allowed
    data root."""
    monkeypatch.setenv("METALLMIX_DATA_ROOTS", str(tmp_path / "data"))  # restored after the test
    return store.path


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The only allowed data root, holding a tiny 3-class .npz dataset `bands.npz`."""
    data = tmp_path / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    arrays = {}
    for name, n in (("train", 45), ("val", 12), ("test", 12)):
        y = np.arange(n) % 3
        arrays[f"{name}_images"] = rng.integers(0, 255, (n, 16, 16), dtype=np.uint8)
        arrays[f"{name}_labels"] = y.reshape(-1, 1)
    np.savez(data / "bands.npz", **arrays)
    monkeypatch.setenv("METALLMIX_DATA_ROOTS", str(data))
    return data


@pytest.fixture
def launcher() -> FakeLaunch:
    """launch_training replaced: records its calls, trains nothing."""
    from tests.agent.helpers import FakeLaunch

    return FakeLaunch()


@pytest.fixture
def tools(store: RunStore, launcher: FakeLaunch) -> list:
    """The advisor's tools on `store`, with `launcher` as launch_training."""
    from tools import get_tools
    from tools.base import make_tool
    from tools.training import LaunchArgs

    fake = make_tool(launcher, "launch_training", "train (fake)", LaunchArgs)
    return [*get_tools(store.path, training_tool=False), fake]


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """The URL of a throwaway PostgreSQL server for this test session (tests/pg_server.py); skips
    the test when none can start here (no PostgreSQL binaries, no psycopg, ...)."""
    import subprocess

    from tests.pg_server import ServerUnavailable, postgres_server

    try:
        server = postgres_server()
        url = server.__enter__()
    except (ServerUnavailable, OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"no PostgreSQL server: {exc}")
    try:
        yield url
    finally:
        server.__exit__(None, None, None)
