"""Time to match (issue 17): incumbent curves and speed-ups, the fine-tune default, resuming units
and searches from the state dir, the report, the figures and the CLI flags. A fake trainer (no
torch) trains in no time: the wiring, not the training, is under test."""

from __future__ import annotations

import json
import math
from pathlib import Path

import optuna
import pytest

from eval.e2e import arms, curves, offline
from eval.e2e.match_report import match_figures, match_markdown
from eval.e2e.search import complete, run_search
from eval.e2e.timematch import run_time_to_match
from knowledge.datasets.loader import load_dataset
from knowledge.errors import ConfigError
from knowledge.recommend.algorithm import advisor_fingerprint
from knowledge.runs.record import Outcome, Provenance, RunRecord
from knowledge.search_space import CPU_SPACE, TrainConfig
from knowledge.sweeps import backend as sweep_backend
from knowledge.sweeps.backend import Backend
from tests.eval.test_e2e import write_npz
from tests.knowledge.recommend_fixtures import store_with_runs
from ui.cli import main

CALLS: list[str] = []


def fake_train(dataset, config, *, seed=0, time_budget_s=None, num_threads=None, progress=None,  # noqa: ANN001, ANN201
               cancel=None, store=None, study=None, device=None):
    """Accuracy from the learning rate, 0.5 s of 'training' per epoch, stopped at the time limit."""
    CALLS.append(study or "")
    acc = 0.6 + 0.3 * math.exp(-(math.log10(config.lr) + 3) ** 2) + 0.001 * seed
    seconds, status = 0.5 * config.epochs, "ok"
    if time_budget_s is not None and seconds > time_budget_s:
        seconds, status = time_budget_s, "timeout"
    record = RunRecord(
        dataset_id=dataset.id, base_dataset=dataset.base, meta_features=dataset.meta_features(),
        config=config, status=status,
        outcome=Outcome(val_acc=acc, test_acc=acc - 0.01, test_auc=acc, train_seconds=seconds,
                        epochs_completed=config.epochs),
        provenance=Provenance(source="own", seed=seed, study=study, device="fake"))
    if store is not None:
        store.add(record)
    return record


FAKE = Backend(load_dataset=load_dataset, train=fake_train, pretrained_available=lambda m: False)


def trials(*rows: tuple[float, float | None, float | None]) -> list[dict]:
    """Trials from (train_seconds, val_acc, test_acc)."""
    return curves.with_cumulative([{"number": i, "train_seconds": s, "val_acc": v, "test_acc": t}
                                   for i, (s, v, t) in enumerate(rows)])


# --- curves --------------------------------------------------------------------------------------

def test_incumbent_is_best_by_validation_scored_on_test() -> None:
    ts = trials((4, 0.7, 0.65), (4, None, None), (4, 0.9, 0.80), (4, 0.85, 0.95), (20, 0.95, 0.82))
    assert [p["number"] for p in curves.incumbent_curve(ts)] == [0, 2, 4]  # 3: lower val, ignored
    assert curves.incumbent_at(ts, 3.9) is None
    assert curves.incumbent_at(ts, 10)["test_acc"] == 0.65
    assert curves.incumbent_at(ts, 12)["test_acc"] == 0.80  # ends exactly at 12 s
    summary = curves.search_summary(ts, rec_seconds=4.0, rec_acc=0.81, max_multiple=10)
    assert summary["acc_at"] == {"1": 0.65, "3": 0.80, "10": 0.82}
    assert summary["speed_up"] == {"multiple": 9.0, "reached": 9.0, "matched": True, "label": "9×"}
    early = curves.search_summary(ts, 4.0, 0.81, 10, covered_seconds=36.0)  # stopped at 9x
    assert early["acc_at"] == {"1": 0.65, "3": 0.80, "10": None}


def test_search_draws_differ_from_the_sweeps() -> None:
    from eval.e2e.search import search_sampler_seed
    from knowledge.sweeps.study import sampler_seed

    assert search_sampler_seed(0, 0) != sampler_seed(0, 0, 0)
    assert search_sampler_seed(0, 0) != search_sampler_seed(1, 0) != search_sampler_seed(0, 3)


def test_speed_up_never_matched_and_matched_at_once() -> None:
    ts = trials((10, 0.7, 0.70), (30, 0.8, 0.75))
    never = curves.speed_up(ts, 4.0, 0.9, 10)
    assert never["multiple"] is None and never["label"] == "> 10×" and not never["matched"]
    at_once = curves.speed_up(ts, 10.0, 0.70, 10)
    assert at_once["multiple"] == 1.0 and at_once["label"] == "1×"
    faster = curves.speed_up(ts, 20.0, 0.70, 10)
    assert faster["multiple"] == 0.5  # the search matched in half the recommended run's time
    assert curves.speed_up([], 4.0, 0.5, 10)["label"] == "> 10×"


def test_same_time_speed_ups_reuse_the_searches_against_the_longer_pick() -> None:
    from eval.e2e.summary import same_time_speed_ups

    ts = trials((10, 0.7, 0.70), (20, 0.8, 0.75))  # ended at 10 s and 30 s
    searches = {"tpe": {"runs": [{"seed": 0, "trials": ts}, {"seed": 1, "trials": ts}]}}
    runs = [{"seed": 0, "train_seconds": 10.0, "test_acc": 0.75},  # matched at 30 s: 3x
            {"seed": 1, "train_seconds": 8.0, "test_acc": 0.90}]  # never: the trials covered 30/8
    got = same_time_speed_ups(runs, searches)["tpe"]
    assert [r["label"] for r in got["runs"]] == ["3×", "> 3.8×"]  # not "> 10x": 10x of a shorter run
    assert got["median"] == {"multiple": None, "lower": 3.375, "label": "> 3.4×"}
    # a seed without its same-time run yet is left out
    assert [r["seed"] for r in same_time_speed_ups(runs[:1], searches)["tpe"]["runs"]] == [0]


def test_median_counts_unmatched_as_slowest() -> None:
    m = curves.median_multiple
    assert m([{"multiple": 2.0}, {"multiple": None}, {"multiple": 4.0}], 10)["multiple"] == 4.0
    # one seed matched at 2x, the other never within 10x: the median is only known to exceed 6x
    two = m([{"multiple": 2.0}, {"multiple": None}], 10)
    assert two == {"multiple": None, "lower": 6.0, "label": "> 6×"}
    assert m([{"multiple": None}, {"multiple": None}], 10)["label"] == "> 10×"
    assert m([{"multiple": 2.0}, {"multiple": 3.0}], 10)["multiple"] == 2.5
    # medians of datasets: lower bounds enter as values; a median on an exact value above a bound is "at least"
    assert m([two, {"multiple": 7.0}, {"multiple": None}], 10)["label"] == "≥ 7×"
    assert m([two, {"multiple": None}, {"multiple": None}], 10)["label"] == "> 10×"
    assert m([{"multiple": 3.0}, two, {"multiple": 9.0}], 10) == {"multiple": None, "lower": 6.0,
                                                                  "label": "> 6×"}
    assert m([], 10) is None
    assert curves.mean_std([0.8, None, 0.9]) == {"mean": 0.85, "std": pytest.approx(0.07071, abs=1e-4), "n": 2}


# --- the fine-tune default -----------------------------------------------------------------------

def test_finetune_default_config() -> None:
    c = arms.finetune_config("resnet18", False, 8)
    assert (c.model, c.pretrained, c.scheme, c.resolution) == ("resnet18", False, "end_to_end", 28)
    assert (c.optimizer, c.lr, c.weight_decay, c.batch_size, c.epochs) == ("adamw", 1e-3, 0.05, 64, 10)
    assert (c.augmentation, c.label_smoothing) == ("light", 0.1)
    assert arms.finetune_config("resnet18", True, 40).resolution == 48
    assert arms.finetune_config("resnet18", True, 224).resolution == 64
    assert arms.finetune_config("resnet18", True, 224).pretrained
    assert "0.05" in arms.FINETUNE_CONFIG_TEXT and "label smoothing 0.1" in arms.FINETUNE_CONFIG_TEXT


def test_practitioner_arms_do_not_follow_the_recommendation() -> None:
    none = arms.practitioner_default(lambda m: False)
    assert (none.model, none.pretrained, none.resolution, none.epochs) == ("resnet18", False, 28, 10)
    assert arms.practitioner_default(lambda m: True).pretrained  # pretrained where weights exist
    offline = arms.practitioner_finetune(lambda m: m == "efficientnet_lite0", 28)
    assert (offline.model, offline.pretrained, offline.resolution) == ("efficientnet_lite0", True, 64)
    assert (offline.weight_decay, offline.label_smoothing) == (0.05, 0.1)
    assert arms.practitioner_finetune(lambda m: True, 28).model == "resnet18"
    scratch = arms.practitioner_finetune(lambda m: False, 8)
    assert (scratch.model, scratch.pretrained, scratch.resolution) == ("resnet18", False, 28)


# --- searches resume from their storage ----------------------------------------------------------

def test_a_search_resumes_from_its_finished_trials(tmp_path: Path) -> None:
    dataset = load_dataset(str(write_npz(tmp_path / "tiny.npz")))
    url = f"sqlite:///{tmp_path / 'tpe.sqlite'}"
    kwargs = dict(sampler="tpe", seed=0, rec_seconds=4.0, max_multiple=10, space=CPU_SPACE, warmup=2,
                  max_trials=100, storage_url=url, store=None, num_threads=1)

    def crashing(dataset, config, **kw):  # noqa: ANN001, ANN003, ANN202
        if len(CALLS) >= 3:
            raise KeyboardInterrupt  # the process stops in the fourth trial
        return fake_train(dataset, config, **kw)

    CALLS.clear()
    trainer = arms.Trainer(Backend(load_dataset=load_dataset, train=crashing,
                                   pretrained_available=lambda m: False))
    with pytest.raises(KeyboardInterrupt):
        run_search(dataset, trainer, **kwargs)
    first = [(r.config, r.outcome.train_seconds) for r in trainer.records]
    assert len(first) == 3
    study = optuna.load_study(study_name=arms.study_tag(dataset.id, "tpe-s0"), storage=url)
    study.ask()  # a trial left RUNNING by a dead process: failed on resume, not counted

    CALLS.clear()
    result = run_search(dataset, arms.Trainer(FAKE), **kwargs)
    got = result["trials"]
    assert [(t["config"], t["train_seconds"]) for t in got[:3]] == [
        (c.model_dump(mode="json"), s) for c, s in first]
    assert len(CALLS) == len(got) - 3  # only the new trials trained
    assert got[-1]["cumulative_seconds"] == pytest.approx(sum(t["train_seconds"] for t in got))
    assert 40.0 - result["train_seconds"] < 1.0 and result["stopped"] == "budget"
    assert all(t["status"] in ("ok", "timeout") for t in got)


def test_a_search_re_paired_with_a_shorter_budget_runs_the_crossing_trial_cut(tmp_path: Path) -> None:
    """Re-paired with a shorter recommended run, a search counts the trials within the new budget and
    runs the one that crossed it again, cut at the time left (what a search given that budget from
    the start ran); a rerun trains nothing more, and the unit is complete."""
    dataset = load_dataset(str(write_npz(tmp_path / "tiny.npz")))
    kwargs = dict(sampler="tpe", seed=0, max_multiple=10, space=CPU_SPACE, warmup=2, max_trials=100,
                  storage_url=f"sqlite:///{tmp_path / 'tpe.sqlite'}", store=None, num_threads=1)
    first = run_search(dataset, arms.Trainer(FAKE), rec_seconds=4.0, **kwargs)["trials"]
    starts = [t["cumulative_seconds"] - t["train_seconds"] for t in first]
    crossing = [k for k in range(1, len(first)) if first[k]["train_seconds"] >= 2.5
                and first[k]["train_seconds"] > 0.11 * starts[k] + 0.1]
    assert crossing, [t["train_seconds"] for t in first]
    k = crossing[0]
    budget = starts[k] + 0.5 * first[k]["train_seconds"]
    CALLS.clear()
    second = run_search(dataset, arms.Trainer(FAKE), rec_seconds=budget / 10, **kwargs)
    got = second["trials"]
    assert len(CALLS) == 1 and len(got) == k + 1
    assert [t["config"] for t in got[:k]] == [t["config"] for t in first[:k]]
    assert got[k]["config"] == first[k]["config"] and got[k]["status"] == "timeout"
    assert got[k]["recut_of"] == first[k]["number"]
    assert got[k]["train_seconds"] == pytest.approx(budget - starts[k])
    assert second["train_seconds"] == pytest.approx(budget) and second["stopped"] == "budget"
    assert complete(second, budget / 10)
    CALLS.clear()
    third = run_search(dataset, arms.Trainer(FAKE), rec_seconds=budget / 10, **kwargs)
    assert CALLS == [] and [t["run_id"] for t in third["trials"]] == [t["run_id"] for t in got]


def test_budget_prefix_counts_the_draws_after_a_recut_that_ended_early() -> None:
    """A stored study holds the crossing trial, a longer budget's trials after it, its re-cut and the
    draws made after the re-cut (it ended before the time left, e.g. on a faster machine): the
    prefix is the trials before the crossing one, the re-cut in its place, then those draws."""
    from eval.e2e.search import budget_prefix
    ts = trials((20.0, 0.5, 0.5), (50.0, 0.6, 0.6), (30.0, 0.7, 0.7), (25.0, 0.65, 0.65), (10.0, 0.4, 0.4))
    ts[3].update(recut_of=1, recut_budget=60.0)  # trial 1 re-run for a 60-s budget: ended at 25 s
    counted, crossed = budget_prefix(ts, 60.0)
    assert [t["number"] for t in counted] == [0, 3, 4] and crossed is None
    ts[3]["status"] = "timeout"  # cut at the time left: nothing after it counts
    assert [t["number"] for t in budget_prefix(ts, 60.0)[0]] == [0, 3]
    assert [t["number"] for t in budget_prefix(ts[:3], 60.0)[0]] == [0]  # no re-cut yet: 1 crosses
    assert budget_prefix(ts[:3], 60.0)[1]["number"] == 1


def test_a_search_short_of_its_budget_is_not_complete() -> None:
    unit = {"rec_seconds": 10.0, "budget_seconds": 100.0, "stopped": "budget",
            "trials": trials((20.0, 0.5, 0.5), (30.0, 0.6, 0.6))}  # 50 of 100 s: a restored unit
    assert not complete(unit, 10.0)
    assert not complete(unit, 12.0)  # not paired either
    full = {**unit, "trials": trials((20.0, 0.5, 0.5), (30.0, 0.6, 0.6), (49.5, 0.7, 0.7))}
    assert complete(full, 10.0)
    assert complete({**unit, "stopped": "max_trials"}, 10.0)  # stopped by its trial limit: done
    overshot = trials((20.0, 0.5, 0.5), (30.0, 0.6, 0.6), (70.0, 0.7, 0.7))
    overshot[-1]["status"] = "timeout"  # cut at the budget after a long last epoch: it counts
    assert complete({**unit, "trials": overshot}, 10.0)
    overshot[-1]["status"] = "ok"  # ran past it unstopped (a longer budget's trial): run again cut
    assert not complete({**unit, "trials": overshot}, 10.0)


# --- the whole harness ---------------------------------------------------------------------------

@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    for var, sub in (("METALLMIX_HOME", "home"), ("METALLMIX_DATA", "data")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    return {"store": store_with_runs(tmp_path / "runs.sqlite"), "npz": write_npz(tmp_path / "tiny.npz"),
            "state": tmp_path / "state", "tmp": tmp_path}


def run(env: dict, **kw: object) -> dict:
    args = dict(store=env["store"], budget="CPU only, 3 seconds", seeds=(0, 1), search_seeds=(0,),
                max_multiple=3, tpe_warmup=1, state_dir=env["state"], backend=FAKE, num_threads=1,
                same_time=False)
    return run_time_to_match([str(env["npz"])], **{**args, **kw})


def test_same_time_view_recommends_for_the_default_time_and_trains_its_seeds(env: dict) -> None:
    CALLS.clear()
    report = run(env, same_time=True)
    entry = report["match"]["datasets"][0]
    default_runs = entry["arms"]["default"]["runs"]
    mean_default = sum(r["train_seconds"] for r in default_runs) / len(default_runs)
    same = entry["same_time"]
    assert same["budget_s"] == round(mean_default, 1)  # the default's measured time is the budget
    assert [r["seed"] for r in same["runs"]] == [0, 1] and same["gap_points_default"] is not None
    assert all(r["train_seconds"] <= 1.5 * same["budget_s"] for r in same["runs"])  # the time limit
    pick = TrainConfig(**same["runs"][0]["config"])
    default = TrainConfig(**default_runs[0]["config"])
    trained = [c for c in CALLS if ":sametime-s" in c]
    assert len(trained) == (0 if pick == default else 2)  # a pick equal to the default reuses its runs
    n = len(CALLS)
    again = run(env, same_time=True)
    assert len(CALLS) == n and again["match"]["datasets"][0]["same_time"] == same  # resumable
    text = match_markdown(again)
    assert "**Same time as the space default**" in text and "Same-time pick within 1 point" in text
    speed = same["speed_up"]["tpe"]  # the same search, against the same-time run of seed 0
    assert [r["seed"] for r in speed["runs"]] == [0] and speed["median"]["label"].endswith("×")
    assert "Median speed-up of the same-time pick against TPE over 1 dataset(s)" in text
    assert again["match"]["same_time_compared"] == 1
    json.dumps(again)


def test_the_plans_predict_times_for_the_threads_the_runs_train_with(env: dict, monkeypatch) -> None:
    from eval.e2e import timematch

    budgets = []
    real = timematch.recommend
    monkeypatch.setattr(timematch, "recommend", lambda *a, budget, **kw: budgets.append(budget) or real(
        *a, budget=budget, **kw))
    run(env, same_time=True, num_threads=1)
    assert len(budgets) == 2 and [b.cpu_threads for b in budgets] == [1, 1]  # one-minute and same-time


def test_a_same_time_pick_equal_to_the_default_reuses_its_runs(env: dict, monkeypatch) -> None:
    from eval.e2e import timematch

    real = timematch._plan

    def plan_the_default(*args, budget, **kw):  # noqa: ANN001, ANN202
        out = real(*args, budget=budget, **kw)
        if budget.max_seconds != 3.0:  # the same-time plan: its pick is the default config
            out["recommended"] = {**out["recommended"], "config": out["default_config"]}
        return out

    monkeypatch.setattr(timematch, "_plan", plan_the_default)
    CALLS.clear()
    entry = run(env, same_time=True)["match"]["datasets"][0]
    assert not [c for c in CALLS if ":sametime-s" in c]  # nothing trained for it
    assert [r["reused"] for r in entry["same_time"]["runs"]] == ["default-s0", "default-s1"]
    assert entry["same_time"]["gap_points_default"] == 0.0


def test_units_are_stored_and_a_rerun_skips_them(env: dict) -> None:
    CALLS.clear()
    report = run(env)
    entry = report["match"]["datasets"][0]
    assert entry["complete"] and entry["units_done"] == 3 * 2 + 2 * 1
    assert [r["seed"] for r in entry["arms"]["recommended"]["runs"]] == [0, 1]
    assert entry["arms"]["finetune"]["runs"][0]["config"]["weight_decay"] == 0.05
    tpe = entry["searches"]["tpe"]["runs"][0]
    rec0 = entry["arms"]["recommended"]["runs"][0]
    assert tpe["rec_seconds"] == rec0["train_seconds"] and tpe["rec_acc"] == rec0["test_acc"]
    assert set(tpe["acc_at"]) == {"1", "3", "10"} and tpe["speed_up"]["label"]
    assert entry["searches"]["random"]["runs"][0]["n_trials"] >= 1
    assert report["datasets"] and report["datasets"][0]["runs"]["tpe"]["stopped"].startswith("1x")
    n = len(CALLS)
    assert any(":tpe-s0#" in c for c in CALLS) and any(":random-s0#" in c for c in CALLS)
    again = run(env)
    assert len(CALLS) == n  # everything was done: nothing trained again
    assert again["match"]["datasets"][0]["arms"] == entry["arms"]
    more = run(env, seeds=(0, 1, 2))  # a third seed: only its three runs
    assert len(CALLS) == n + 3 and more["match"]["datasets"][0]["arms"]["default"]["test_acc"]["n"] == 3


def test_units_of_a_changed_default_arm_are_run_again(env: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    CALLS.clear()
    run(env)
    n = len(CALLS)
    changed = TrainConfig(model="resnet18", pretrained=False, epochs=4)  # another default arm
    monkeypatch.setattr(arms, "practitioner_default", lambda ok: changed)
    report = run(env)
    assert len(CALLS) == n + 2  # the default arm of seeds 0 and 1 only; rec, fine-tune, searches kept
    runs = report["match"]["datasets"][0]["arms"]["default"]["runs"]
    assert [TrainConfig(**r["config"]) for r in runs] == [changed, changed]


def test_other_settings_in_the_same_state_dir_are_refused(env: dict) -> None:
    run(env, seeds=(0,), search_seeds=(), max_multiple=1)
    with pytest.raises(ConfigError, match="other settings.*budget"):
        run(env, budget="CPU only, 4 seconds", seeds=(0,), search_seeds=(), max_multiple=1)
    with pytest.raises(ConfigError, match="not among the seeds"):
        run(env, seeds=(0,), search_seeds=(1,))


def test_plans_of_another_meta_learner_definition_are_made_again(env: dict, monkeypatch) -> None:
    """Two advisors never mix in one table: a plan made by another learner definition is made
    again by this one (its runs kept where the pick is the same); older state dirs recorded the
    definition in their settings file, for every plan."""
    from knowledge.metalearner import model

    CALLS.clear()
    first = run(env, seeds=(0,), search_seeds=(), max_multiple=1)
    n, plan_path = len(CALLS), next(env["state"].rglob("plan.json"))
    before = json.loads(plan_path.read_text())
    assert before["learner"] == advisor_fingerprint()
    monkeypatch.setitem(model.ACC_PARAMS, "max_depth", model.ACC_PARAMS["max_depth"] + 1)
    stale = run(env, seeds=(0,), search_seeds=(), max_multiple=1, report_only=True)  # not planned yet
    assert stale["match"]["datasets"][0]["current_advisor"] is False and len(CALLS) == n
    assert "older advisor" in match_markdown(stale)
    again = run(env, seeds=(0,), search_seeds=(), max_multiple=1)
    after = json.loads(plan_path.read_text())
    assert after["learner"] == advisor_fingerprint() != before["learner"]
    assert after["planned_at"] >= before["planned_at"] and after["fit"] != before["fit"]
    same = after["recommended"]["config"] == before["recommended"]["config"]
    assert len(CALLS) == n + (0 if same else 1)  # only a recommended run of another pick trains
    assert again["match"]["datasets"][0]["arms"]["default"] == first["match"]["datasets"][0]["arms"]["default"]
    assert again["match"]["datasets"][0]["current_advisor"] is True
    assert "older advisor" not in match_markdown(again)

    # an older state dir: no learner in its plans, the settings file names the one that made them
    settings_path = env["state"] / "settings.json"
    settings = json.loads(settings_path.read_text())
    settings_path.write_text(json.dumps({**settings, "learner": "an-older-one"}))
    plan_path.write_text(json.dumps({k: v for k, v in after.items() if k != "learner"}))
    run(env, seeds=(0,), search_seeds=(), max_multiple=1)  # accepted: the key is per plan now
    assert json.loads(plan_path.read_text())["learner"] == advisor_fingerprint()

    # other advisor rules (the anchor, the cuts: `algorithm.ADVISOR_RULES`) make another advisor too
    from knowledge.recommend import algorithm

    planned = json.loads(plan_path.read_text())
    monkeypatch.setattr(algorithm, "ADVISOR_RULES", algorithm.ADVISOR_RULES + "+test-rule")
    run(env, seeds=(0,), search_seeds=(), max_multiple=1)
    replanned = json.loads(plan_path.read_text())
    assert replanned["learner"] == advisor_fingerprint() and replanned["learner"].endswith("+test-rule")
    assert replanned["planned_at"] >= planned["planned_at"] and replanned["fit"] != planned["fit"]


def test_report_table_and_figures(env: dict) -> None:
    report = run(env)
    text = match_markdown(report)
    assert "speed-up vs TPE" in text and "speed-up vs random" in text and "fine-tune default" in text
    assert "Median speed-up of the zero-shot pick against TPE" in text
    load = report["match"]["datasets"][0]["load_avg_1min"]  # every unit records the machine's load
    assert load["n"] == report["match"]["datasets"][0]["units_done"] and load["max"] >= load["median"] >= 0
    assert "load average (1 min) when its units ended" in text
    assert load["threads"] == [1] and "threads per run: 1)" in text  # run(...) trains on 1 thread
    pngs = match_figures(report, env["tmp"] / "figs")
    assert len(pngs) == 1 and pngs[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    json.dumps(report)


def test_all_offline_skips_what_is_missing(env: dict) -> None:
    assert offline.medmnist_missing("medmnist:bloodmnist") is not None  # empty data dir
    (env["tmp"] / "data").mkdir()
    (env["tmp"] / "data" / "bloodmnist.npz").write_bytes(b"")
    assert offline.medmnist_missing("medmnist:bloodmnist") is None
    ok, skipped = offline.available(["medmnist:breastmnist", "digits"], lambda s: s)
    assert [s for s, _ in ok] == ["digits"] and "breastmnist" in skipped[0]
    assert len(offline.ALL_OFFLINE) == 7 and "fashion-mnist?n=5000&seed=0" in offline.ALL_OFFLINE


def test_cli_time_to_match(env: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setattr(sweep_backend, "REAL", FAKE)
    out, md, figs = env["tmp"] / "m.json", env["tmp"] / "m.md", env["tmp"] / "figs"
    argv = ["eval", "e2e", str(env["npz"]), "--time-to-match", "--store", str(env["store"].path),
            "--budget", "CPU only, 3 seconds", "--seeds", "0,1", "--search-seeds", "0",
            "--max-multiple", "2", "--tpe-warmup", "1", "--state-dir", str(env["state"]),
            "--figures", str(figs), "--out", str(out), "--markdown", str(md), "--json", "--no-progress"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads(out.read_text())
    assert printed["settings"]["seeds"] == [0, 1] and printed["settings"]["max_multiple"] == 2
    assert md.read_text().startswith("Time to match") and len(list(figs.glob("*.png"))) == 1
    bad = main(["eval", "e2e", str(env["npz"]), "--time-to-match", "--seeds", "a",
                "--state-dir", str(env["state"]), "--no-progress"])
    assert bad == 2 and "expected whole numbers" in capsys.readouterr().err


def test_the_benchmarks_own_runs_never_train_its_meta_learner(env: dict) -> None:
    """A dataset planned in a later part sees the same evidence as one planned first."""
    from eval.e2e.state import StateDir

    other = write_npz(env["tmp"] / "other.npz")  # another base dataset than tiny.npz

    def plan_other(state: str) -> int:
        run_time_to_match([str(other)], store=env["store"], budget="CPU only, 3 seconds",
                          seeds=(0,), search_seeds=(), max_multiple=1, tpe_warmup=1,
                          state_dir=env["tmp"] / state, backend=FAKE, num_threads=1)
        plan = next(StateDir(env["tmp"] / state).root.rglob("plan*.json"))
        return json.loads(plan.read_text())["fit"]["n_records"]

    before = plan_other("first")
    run(env, seeds=(0,), search_seeds=(), max_multiple=1)  # tiny.npz's e2e runs are stored
    assert any(str(r.provenance.study or "").startswith("e2e:") for r in env["store"].query())
    assert plan_other("later") == before


def test_new_evidence_replans_and_re_pairs_the_searches(env: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs added to the store (a portfolio run) re-plan the dataset; a recommended run of
    another config is made again and each search is re-paired with it, resumed from its trials."""
    from eval.e2e import timematch
    from tests.knowledge.recommend_fixtures import synthetic_records

    CALLS.clear()
    first = run(env)["match"]["datasets"][0]
    n = len(CALLS)
    tpe_before = first["searches"]["tpe"]["runs"][0]
    again = run(env)  # same evidence: nothing is planned or trained again
    assert len(CALLS) == n and again["match"]["datasets"][0]["recommended_config"] == first["recommended_config"]

    shorter = TrainConfig(model="resnet18", pretrained=False, lr=1e-3, epochs=1)  # 0.5 s vs the pick's
    monkeypatch.setattr(arms, "pick_recommended",
                        lambda rec, why_not: rec.best.model_copy(update={"config": shorter}))
    extra = synthetic_records(per_dataset=1)[0].model_copy(update={"run_id": "portfolio-run-added"})
    env["store"].add(extra)
    report = run(env)
    entry = report["match"]["datasets"][0]
    rec_runs = entry["arms"]["recommended"]["runs"]
    assert [TrainConfig(**r["config"]) for r in rec_runs] == [shorter, shorter]
    # two recommended runs made again; default, fine-tune and the (shorter-budget) searches kept
    assert len(CALLS) == n + 2
    plan = json.loads(next(env["state"].rglob("plan.json")).read_text())
    assert plan["evidence"] == timematch.evidence_key(
        [r for r in env["store"].query() if not str(r.provenance.study or "").startswith("e2e:")])
    for sampler in ("tpe", "random"):
        search = entry["searches"][sampler]["runs"][0]
        assert search["rec_seconds"] == rec_runs[0]["train_seconds"] == 0.5
        budget = 3 * 0.5  # max_multiple x the new recommended run's time
        assert search["trials"] and all(t["cumulative_seconds"] <= budget * 1.05 for t in search["trials"])
    assert tpe_before["rec_seconds"] != 0.5


def test_report_only_trains_nothing(env: dict, capsys: pytest.CaptureFixture) -> None:
    CALLS.clear()
    with pytest.raises(ConfigError, match="holds no planned dataset"):
        run(env, report_only=True)
    full = run(env)
    n = len(CALLS)
    again = run_time_to_match([], store=env["store"], budget="CPU only, 3 seconds", seeds=(0, 1),
                              search_seeds=(0,), max_multiple=3, tpe_warmup=1, state_dir=env["state"],
                              backend=FAKE, num_threads=1, report_only=True)
    assert len(CALLS) == n and again["match"]["datasets"] == full["match"]["datasets"]
    with pytest.raises(ConfigError, match="other settings"):  # another budget: not this state dir's
        run(env, budget="CPU only, 4 seconds", report_only=True)
    out = env["tmp"] / "match.json"
    code = main(["eval", "e2e", "--time-to-match", "--report-only", "--budget", "CPU only, 3 seconds",
                 "--store", str(env["store"].path), "--seeds", "0,1", "--search-seeds", "0",
                 "--max-multiple", "3", "--tpe-warmup", "1", "--state-dir", str(env["state"]),
                 "--out", str(out), "--figures", str(env["tmp"] / "figs"), "--no-progress", "--json"])
    assert code == 0 and len(CALLS) == n
    assert json.loads(out.read_text())["match"]["datasets"] == full["match"]["datasets"]
    assert main(["eval", "e2e", str(env["npz"]), "--report-only", "--no-progress"]) == 2
    assert "--report-only goes with --time-to-match" in capsys.readouterr().err
