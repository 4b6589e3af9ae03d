"""Fixtures of the eval tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.knowledge.recommend_fixtures import SMALL_ACC_PARAMS, SMALL_COST_PARAMS, ready_store


@pytest.fixture(scope="module")
def eval_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An isolated home (module-wide: the autouse home fixture is per test), a small source
    store, no downloads, hashing embeddings, small meta-learner fits."""
    from knowledge.metalearner import model
    from knowledge.recommend import clear_cache

    home = tmp_path_factory.mktemp("agent-eval-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("METALLMIX_HOME", str(home))
        mp.setenv("METALLMIX_STORE", str(home / "runs.sqlite"))
        mp.setenv("METALLMIX_DATA", str(home / "data"))
        mp.setenv("METALLMIX_EMBEDDINGS", "hashing")
        mp.setenv("METALLMIX_OFFLINE", "1")
        mp.delenv("METALLMIX_LLM", raising=False)
        mp.setattr(model, "ACC_PARAMS", SMALL_ACC_PARAMS)
        mp.setattr(model, "COST_PARAMS", SMALL_COST_PARAMS)
        clear_cache()
        ready_store(home / "source.sqlite")
        yield home
        clear_cache()
