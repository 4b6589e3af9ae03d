"""`knowledge.sweeps.portfolio`: a fixed set of configs trained on every dataset lacking them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from knowledge.errors import ConfigError
from knowledge.runs.store import RunStore
from knowledge.search_space import TrainConfig
from knowledge.sweeps.portfolio import PORTFOLIO_FILE, done_pairs, load_portfolio, run_portfolio
from tests.knowledge.sweep_fakes import FAKE

CONFIGS = [
    TrainConfig(model="mobilenetv3_small_100", pretrained=False, resolution=28, lr=1e-3, epochs=2),
    TrainConfig(model="efficientnet_lite0", pretrained=True, resolution=32, lr=3e-3, epochs=1),
    TrainConfig(model="resnet18", pretrained=False, resolution=28, lr=1e-2, epochs=1),  # fake OOM
]


def test_the_shipped_portfolio_is_valid_and_recommendable() -> None:
    from knowledge.metalearner.support import recommendable

    configs = load_portfolio()
    assert len(configs) >= 10 and all(recommendable(c) for c in configs)
    assert all(c.spec.cpu_friendly for c in configs)
    assert load_portfolio(PORTFOLIO_FILE) == configs


def test_every_pair_once_then_resume(tmp_path: Path) -> None:
    store = tmp_path / "runs.sqlite"
    first = run_portfolio(["fake:a", "fake:b"], CONFIGS[:2], store_path=store, backend=FAKE,
                          progress=False)
    assert first.trained == 4 and first.skipped == 0 and first.statuses == {"ok": 4}
    records = RunStore(store).query()
    assert {(r.dataset_id, r.config) for r in records} == {
        (d, c) for d in ("fake:a", "fake:b") for c in CONFIGS[:2]}
    assert {r.provenance.study for r in records} == {
        f"metallmix:{d}:portfolio#{i}" for d in ("fake:a", "fake:b") for i in (0, 1)}
    # a rerun with one more config trains only what is missing; failed runs count as done too
    second = run_portfolio(["fake:a", "fake:b"], CONFIGS, store_path=store, backend=FAKE,
                           progress=False)
    assert second.trained == 2 and second.skipped == 4 and second.statuses == {"out-of-memory": 2}
    third = run_portfolio(["fake:a", "fake:b"], CONFIGS, store_path=store, backend=FAKE,
                          progress=False)
    assert third.trained == 0 and third.skipped == 6
    assert len(done_pairs(RunStore(store), ["fake:a"])) == 3


def test_bad_portfolio_files_are_one_clear_error(tmp_path: Path) -> None:
    cases = {
        "missing.json": None,
        "not-json.json": "{",
        "empty.json": json.dumps({"configs": []}),
        "not-a-list.json": json.dumps({"configs": {"model": "resnet18"}}),
        "bad-entry.json": json.dumps([{"model": "resnet18", "lr": -1}]),
        "not-an-object.json": json.dumps([3]),
    }
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text)
        with pytest.raises(ConfigError, match=name.replace(".", r"\.")):
            load_portfolio(path)
    with pytest.raises(ConfigError, match="config 0: lr"):
        load_portfolio(tmp_path / "bad-entry.json")
    with pytest.raises(ConfigError, match="no sources"):
        run_portfolio([], CONFIGS, store_path=tmp_path / "s.sqlite", backend=FAKE, progress=False)


def test_a_cancelled_run_is_trained_again(tmp_path: Path) -> None:
    store = tmp_path / "runs.sqlite"
    run_portfolio(["fake:a"], CONFIGS[:1], store_path=store, backend=FAKE, progress=False)
    s = RunStore(store)
    (record,) = s.query()
    s.add(record.model_copy(update={"status": "cancelled"}), replace=True)
    assert done_pairs(s, ["fake:a"]) == set()
    again = run_portfolio(["fake:a"], CONFIGS[:1], store_path=store, backend=FAKE, progress=False)
    assert again.trained == 1 and again.statuses == {"ok": 1}


@pytest.mark.parametrize("budget", [0.0, -1.0, float("inf"), float("nan")])
def test_trial_budget_must_be_positive_and_finite(tmp_path: Path, budget: float) -> None:
    store = tmp_path / "runs.sqlite"
    with pytest.raises(ConfigError, match="--trial-budget .* positive, finite"):
        run_portfolio(["fake:a"], CONFIGS[:1], store_path=store, backend=FAKE, progress=False,
                      time_budget_s=budget)
    assert not store.exists() or len(RunStore(store)) == 0


def test_only_some_configs_and_short_timeouts_trained_again(tmp_path: Path) -> None:
    store = tmp_path / "runs.sqlite"
    first = run_portfolio(["fake:a"], CONFIGS, store_path=store, backend=FAKE, progress=False, only=[1])
    assert first.trained == 1 and first.skipped == 0
    (record,) = RunStore(store).query()
    assert record.config == CONFIGS[1] and record.provenance.study == "metallmix:fake:a:portfolio#1"
    s = RunStore(store)  # the run stopped at a 120 s limit: a timeout after 120 s of training
    s.add(record.model_copy(update={"status": "timeout", "outcome": record.outcome.model_copy(
        update={"train_seconds": 120.0})}), replace=True)
    assert done_pairs(s, ["fake:a"], redo_timeouts_under=900.0) == set()  # censored: to redo
    assert done_pairs(s, ["fake:a"], redo_timeouts_under=120.0) == {("fake:a", CONFIGS[1].key())}
    same = run_portfolio(["fake:a"], CONFIGS, store_path=store, backend=FAKE, progress=False, only=[1],
                         redo_timeouts=True, time_budget_s=120.0)
    assert same.trained == 0  # a timeout at the same budget would time out again
    longer = run_portfolio(["fake:a"], CONFIGS, store_path=store, backend=FAKE, progress=False,
                           only=[1], redo_timeouts=True, time_budget_s=900.0)
    assert longer.trained == 1 and longer.statuses == {"ok": 1}
    assert sorted(r.status for r in RunStore(store).query()) == ["ok", "timeout"]  # both kept
    with pytest.raises(ConfigError, match=r"--only \[7\]: the portfolio has configs 0 to 2"):
        run_portfolio(["fake:a"], CONFIGS, store_path=store, backend=FAKE, progress=False, only=[7])


def test_a_timing_only_record_does_not_count_as_the_portfolio_run(tmp_path: Path) -> None:
    store = tmp_path / "runs.sqlite"
    run_portfolio(["fake:a"], CONFIGS[:1], store_path=store, backend=FAKE, progress=False)
    s = RunStore(store)
    (record,) = s.query()
    s.add(record.model_copy(update={"provenance": record.provenance.model_copy(
        update={"study": "e2e-harvest:fake:a:default-s0"})}), replace=True)  # a benchmark's run
    assert done_pairs(s, ["fake:a"]) == set()
    again = run_portfolio(["fake:a"], CONFIGS[:1], store_path=store, backend=FAKE, progress=False)
    assert again.trained == 1

