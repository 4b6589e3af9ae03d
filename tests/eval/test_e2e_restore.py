"""A time-to-match state dir rebuilt from its report (`eval.e2e.restore`) and searches replayed into
a lost storage (`search.replay_trials`): a rerun trains nothing that the report already holds, and
a search continued from replayed trials asks its sampler with the same history."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from eval.e2e import arms
from eval.e2e.restore import main as restore_main
from eval.e2e.restore import restore
from eval.e2e.search import replay_trials, run_search
from eval.e2e.state import StateDir
from knowledge.datasets.loader import load_dataset
from knowledge.errors import ConfigError, StoreError
from knowledge.search_space import CPU_SPACE
from tests.eval.test_e2e import write_npz
from tests.eval.test_e2e_match import CALLS, FAKE, env, run  # noqa: F401 - env is a fixture

STRIP = ("load_avg_1min", "created_at", "total_s", "state_dir", "restored_from_report")


def strip(x: object) -> object:
    """A report without what a restore cannot keep (the load at a search's end, times, paths)."""
    if isinstance(x, dict):
        return {k: strip(v) for k, v in x.items() if k not in STRIP}
    if isinstance(x, list):
        return [strip(v) for v in x]
    return x


def test_a_restored_state_dir_reports_the_same_and_trains_nothing(env: dict) -> None:  # noqa: F811
    CALLS.clear()
    full = run(env, same_time=True)
    n = len(CALLS)
    restored = env["tmp"] / "restored"
    counts = restore(full, StateDir(restored), env["store"])
    assert counts == {"plan": 1, "arm": 6, "search": 2, "plan-sametime": 1, "sametime": 2, "skipped": 0}
    again = run(env, same_time=True, state_dir=restored)
    assert len(CALLS) == n  # every unit came back: nothing planned or trained again
    assert strip(again["match"]) == strip(full["match"])
    assert strip(again["datasets"]) == strip(full["datasets"])
    with pytest.raises(ConfigError, match="already holds planned datasets"):
        restore(full, StateDir(restored), env["store"])


def test_restore_keeps_the_plans_learner_and_refuses_other_evidence(env: dict) -> None:  # noqa: F811
    from knowledge.recommend.algorithm import advisor_fingerprint
    from tests.knowledge.recommend_fixtures import synthetic_records

    full = run(env)
    assert full["datasets"][0]["learner"] == advisor_fingerprint()
    report = env["tmp"] / "report.json"
    report.write_text(json.dumps({**full, "datasets": [{**full["datasets"][0], "learner": "older"}]},
                                 default=str))
    assert restore_main([str(report), "--state-dir", str(env["tmp"] / "b"),
                         "--store", str(env["store"].path)]) == 0
    plan = json.loads(next((env["tmp"] / "b").rglob("plan.json")).read_text())
    assert plan["learner"] == "older"  # made by another learner: the next run plans it again
    assert "learner" not in json.loads((env["tmp"] / "b" / "settings.json").read_text())
    env["store"].add(synthetic_records(per_dataset=1)[0].model_copy(update={"run_id": "added-later"}))
    with pytest.raises(StoreError, match="other evidence"):
        restore(full, StateDir(env["tmp"] / "a"), env["store"])
    assert not list((env["tmp"] / "a").glob("*/plan.json"))


def test_a_search_continues_from_replayed_trials(tmp_path: Path) -> None:
    dataset = load_dataset(str(write_npz(tmp_path / "tiny.npz")))
    kwargs = dict(sampler="tpe", seed=0, rec_seconds=4.0, space=CPU_SPACE, warmup=2, max_trials=100,
                  store=None, num_threads=1)
    CALLS.clear()
    first = run_search(dataset, arms.Trainer(FAKE), max_multiple=3,
                       storage_url=f"sqlite:///{tmp_path / 'a.sqlite'}", **kwargs)
    assert len(CALLS) == len(first["trials"]) >= 2
    CALLS.clear()  # the storage is lost; the unit's trials are replayed into a new one
    url = f"sqlite:///{tmp_path / 'b.sqlite'}"
    longer = run_search(dataset, arms.Trainer(FAKE), max_multiple=10, storage_url=url,
                        replay=first["trials"], **kwargs)
    got = longer["trials"]
    assert [(t["config"], t["train_seconds"]) for t in got[:len(first["trials"])]] == [
        (t["config"], t["train_seconds"]) for t in first["trials"]]
    assert len(CALLS) == len(got) - len(first["trials"]) > 0  # only the new trials trained
    a = optuna.load_study(study_name=arms.study_tag(dataset.id, "tpe-s0"),
                          storage=f"sqlite:///{tmp_path / 'a.sqlite'}")
    b = optuna.load_study(study_name=arms.study_tag(dataset.id, "tpe-s0"), storage=url)
    for old, new in zip(a.trials, b.trials):  # the sampler sees the history it drew
        assert (new.params, new.distributions, new.state, new.value) == (
            old.params, old.distributions, old.state, old.value)


def test_replay_refuses_a_config_the_space_does_not_draw(tmp_path: Path) -> None:
    study = optuna.create_study(study_name="s", storage=f"sqlite:///{tmp_path / 's.sqlite'}")
    bad = {"number": 0, "status": "ok", "val_acc": 0.5, "train_seconds": 1.0,
           "config": {"model": "vit_base_patch16_224", "pretrained": False}}
    with pytest.raises(StoreError, match="not a config of the cpu space"):
        replay_trials(study, [bad], CPU_SPACE, lambda m: False)
    assert not study.trials


def test_a_dataset_the_report_keeps_no_plan_of_is_skipped(env: dict) -> None:  # noqa: F811
    full = run(env)
    partial = {**full, "datasets": []}  # as when its first seed's runs were not all done
    counts = restore(partial, StateDir(env["tmp"] / "c"), env["store"])
    assert counts["skipped"] == 1 and counts["plan"] == counts["arm"] == 0
    assert not list((env["tmp"] / "c").glob("*/*.json"))
