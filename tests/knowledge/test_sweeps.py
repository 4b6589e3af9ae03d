"""Sweeps: studies per source, run store tagging, resume, samplers, failures, workers, the plan."""

from __future__ import annotations

import multiprocessing as mp
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from knowledge.datasets import loader
from knowledge.errors import ConfigError, DatasetError
from knowledge.runs.store import RunStore
from knowledge.search_space import CPU_SPACE
from knowledge.sweeps import DEFAULT_PLAN, run_sweep, study_name, suggest_config
from knowledge.sweeps.processes import ORPHAN_GRACE_S
from knowledge.sweeps.study import count_finished, make_sampler, open_storage, storage_url
from tests.helpers import shared_file
from tests.knowledge import sweep_fakes
from tests.knowledge.sweep_fakes import FAKE, OK_SPACE  # OK_SPACE: no resnet18 (fake OOM)


def _sweep(tmp_path: Path, sources=("fake:a",), **kw):
    kw.setdefault("space", OK_SPACE)
    kw.setdefault("sampler", "random")
    return run_sweep(list(sources), storage=tmp_path / "sweeps.sqlite", store_path=tmp_path / "runs.sqlite",
                     progress=False, backend=FAKE, **kw)


def _study(tmp_path: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=storage_url(tmp_path / "sweeps.sqlite"))


def test_trials_land_in_the_store_tagged_with_study_and_trial(tmp_path):
    report = _sweep(tmp_path, sources=("fake:a", "fake:b"), trials=3)

    records = RunStore(tmp_path / "runs.sqlite").query()
    assert len(records) == 6
    tags = sorted(r.provenance.study for r in records)
    assert tags == sorted(f"metallmix:fake:{s}:random#{i}" for s in "ab" for i in range(3))
    assert [s.finished for s in report.sources] == [3, 3]
    assert [s.ok for s in report.sources] == [3, 3]
    study = _study(tmp_path, study_name("fake:a", "random"))
    by_id = {r.run_id: r for r in records}
    for t in study.trials:
        assert t.state == TrialState.COMPLETE
        rec = by_id[t.user_attrs["run_id"]]
        assert t.value == pytest.approx(rec.outcome.val_acc)
        assert t.user_attrs["status"] == "ok" and t.user_attrs["model"] == rec.config.model
    best = report.sources[0]
    assert best.best_val_acc == max(t.value for t in study.trials)
    assert best.best_config == by_id[best.best_run_id].config.model_dump(mode="json")


def test_rerun_does_not_repeat_finished_trials(tmp_path):
    _sweep(tmp_path, trials=3)
    report = _sweep(tmp_path, trials=3)  # nothing left to do
    assert report.sources[0].finished == 3
    assert RunStore(tmp_path / "runs.sqlite").count() == 3
    report = _sweep(tmp_path, trials=5)  # two more, with new parameters
    study = _study(tmp_path, study_name("fake:a", "random"))
    assert report.sources[0].finished == 5 and len(study.trials) == 5
    assert len({t.params["lr"] for t in study.trials}) == 5


def test_resume_after_a_crash_retries_the_stale_trial(tmp_path):
    storage, store = tmp_path / "sweeps.sqlite", tmp_path / "runs.sqlite"
    proc = mp.get_context("spawn").Process(
        target=sweep_fakes.crashing_sweep, args=(str(storage), str(store), 6, 3))
    proc.start()
    proc.join(timeout=120)
    assert proc.exitcode == 3  # killed in trial 3, after three finished trials
    study = _study(tmp_path, study_name("fake:a", "random"))
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3 + [TrialState.RUNNING]
    stale_params = study.trials[3].params
    time.sleep(2.2)  # the dead trial's heartbeat goes stale (grace period 1 s)

    report = _sweep(tmp_path, trials=6, heartbeat_interval=1, grace_period=1)

    study = _study(tmp_path, study_name("fake:a", "random"))
    states = [t.state for t in study.trials]
    assert report.sources[0].finished == 6 and count_finished(study) == 6
    assert states.count(TrialState.COMPLETE) == 6 and states[3] == TrialState.FAIL
    retry = next(t for t in study.trials if t.system_attrs.get("failed_trial") == 3)
    assert retry.state == TrialState.COMPLETE and retry.params == stale_params
    records = RunStore(store).query()
    assert len(records) == 6 and len({r.provenance.study for r in records}) == 6
    finished_params = [tuple(sorted(t.params.items())) for t in study.trials
                       if t.state == TrialState.COMPLETE]
    assert len(set(finished_params)) == 6  # no finished trial was repeated


def test_ctrl_c_stops_and_the_same_call_resumes(tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_INTERRUPT_AT", "2")
    with pytest.raises(KeyboardInterrupt):
        _sweep(tmp_path, trials=4)
    study = _study(tmp_path, study_name("fake:a", "random"))
    assert count_finished(study) == 2 and study.trials[2].state == TrialState.FAIL

    monkeypatch.delenv("FAKE_INTERRUPT_AT")
    report = _sweep(tmp_path, trials=4)
    assert report.sources[0].finished == 4  # the interrupted trial does not count
    assert RunStore(tmp_path / "runs.sqlite").count() == 4


def test_sampler_choice_and_warmup(tmp_path):
    assert isinstance(make_sampler("random", seed=0), optuna.samplers.RandomSampler)
    tpe = make_sampler("tpe", seed=0, warmup=3)
    assert isinstance(tpe, optuna.samplers.TPESampler) and tpe._n_startup_trials == 3
    with pytest.raises(ConfigError, match="warmup"):
        make_sampler("random", seed=0, warmup=3)
    with pytest.raises(ConfigError, match="sampler"):
        run_sweep(["fake:a"], trials=1, sampler="grid", backend=FAKE, progress=False)

    _sweep(tmp_path, trials=2, sampler="random")
    report = _sweep(tmp_path, trials=4, sampler="tpe", warmup=2)
    assert report.sources[0].study == "metallmix:fake:a:tpe"
    names = optuna.get_all_study_names(storage_url(tmp_path / "sweeps.sqlite"))
    assert sorted(names) == ["metallmix:fake:a:random", "metallmix:fake:a:tpe"]


def test_random_sweeps_are_reproducible_per_seed(tmp_path):
    def lrs(folder: Path, seed: int) -> list[float]:
        _sweep(folder, trials=3, seed=seed)
        return [t.params["lr"] for t in _study(folder, study_name("fake:a", "random")).trials]

    first, again, other = lrs(tmp_path / "1", 0), lrs(tmp_path / "2", 0), lrs(tmp_path / "3", 1)
    assert first == again and first != other


def test_failed_runs_are_recorded_and_fail_the_trial(tmp_path):
    space = CPU_SPACE.restrict("oom", model=[sweep_fakes.OOM_MODEL])
    report = _sweep(tmp_path, trials=3, space=space)

    source = report.sources[0]
    assert (source.finished, source.ok, source.failed) == (3, 0, 3)
    assert source.best_val_acc is None and source.best_config is None
    records = RunStore(tmp_path / "runs.sqlite").query()
    assert len(records) == 3 and {r.status for r in records} == {"out-of-memory"}
    study = _study(tmp_path, source.study)
    assert {t.state for t in study.trials} == {TrialState.FAIL}
    assert {t.user_attrs["status"] for t in study.trials} == {"out-of-memory"}
    assert {t.user_attrs["run_id"] for t in study.trials} == {r.run_id for r in records}


def test_pretrained_is_a_parameter_only_for_models_with_weights():
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(40):
        trial = study.ask()
        config = suggest_config(trial, CPU_SPACE, sweep_fakes.fake_pretrained)
        has_weights = config.model in sweep_fakes.WITH_WEIGHTS
        assert ("pretrained" in trial.params) == has_weights
        if not has_weights:
            assert config.pretrained is False
        seen.add((config.model, config.pretrained))
        study.tell(trial, 0.5)
    assert ("resnet18", True) in seen and ("resnet18", False) in seen
    assert ("mobilenetv3_small_100", False) in seen


def test_bad_source_fails_before_any_trial(tmp_path):
    with pytest.raises(DatasetError, match="nope.npz"):
        _sweep(tmp_path, sources=("fake:a", "/data/nope.npz"), trials=2)
    assert not (tmp_path / "sweeps.sqlite").exists() or not optuna.get_all_study_names(
        storage_url(tmp_path / "sweeps.sqlite"))
    assert not (tmp_path / "runs.sqlite").exists() or RunStore(tmp_path / "runs.sqlite").count() == 0


def test_bad_arguments_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="--trials"):
        _sweep(tmp_path, trials=0)
    with pytest.raises(ConfigError, match="--workers"):
        _sweep(tmp_path, trials=1, workers=0)
    for budget in (0, -1, float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="--trial-budget"):
            _sweep(tmp_path, trials=1, trial_time_budget_s=budget)
    with pytest.raises(ConfigError, match="no sources"):
        _sweep(tmp_path, sources=(), trials=1)


def test_each_dataset_is_loaded_once(tmp_path):
    sweep_fakes.LOADS.clear()
    _sweep(tmp_path, sources=("fake:a", "fake:a"), trials=3)  # a duplicate is swept once
    assert sweep_fakes.LOADS == ["fake:a"]


def test_two_worker_processes_share_storage_and_store(tmp_path):
    report = _sweep(tmp_path, sources=("fake:a", "fake:b"), trials=4, workers=2)

    assert [s.finished for s in report.sources] == [4, 4]
    records = RunStore(tmp_path / "runs.sqlite").query()
    assert len(records) == 8 and len({r.provenance.study for r in records}) == 8
    pids = {r.provenance.device.split()[1] for r in records}
    assert len(pids) == 2  # two processes trained
    threads = {r.provenance.device.split()[2] for r in records}
    assert len(threads) == 1 and threads.pop().startswith("threads=")


def test_storage_opens_sqlite_files_and_urls(tmp_path):
    assert storage_url(tmp_path / "x" / "s.sqlite") == f"sqlite:///{tmp_path / 'x' / 's.sqlite'}"
    assert (tmp_path / "x").is_dir()
    assert storage_url("sqlite:///elsewhere.db") == "sqlite:///elsewhere.db"
    assert open_storage(storage_url(tmp_path / "s.sqlite")).heartbeat_interval == 30


# --- the default plan ----------------------------------------------------------------------------
def test_default_plan_covers_real_medical_and_natural_variants():
    assert len(DEFAULT_PLAN) >= 20 and len(set(DEFAULT_PLAN)) == len(DEFAULT_PLAN)
    medical = [s for s in DEFAULT_PLAN if s.startswith("medmnist:")]
    assert len(medical) >= 10
    bases = {s.split("?")[0] for s in DEFAULT_PLAN}
    assert bases == {"medmnist:breastmnist", "medmnist:pneumoniamnist", "medmnist:bloodmnist",
                     "medmnist:organamnist", "fashion-mnist", "mnist-5k", "digits"}


def test_default_plan_specs_parse():
    from knowledge.datasets.sources import is_source
    from knowledge.datasets.variants import Variant

    for spec in DEFAULT_PLAN:
        name, query = loader.split_spec(spec)
        assert is_source(name), spec
        variant = Variant.parse(query, spec)
        assert variant is None or variant.canonical() == query, spec  # ids stay as written


@pytest.mark.slow
def test_default_plan_spans_sizes_and_imbalance(monkeypatch):
    monkeypatch.setenv("METALLMIX_DATA", str(shared_file("medmnist", "breastmnist.npz").parent))
    sizes, ratios = [], []
    for spec in DEFAULT_PLAN:
        try:
            mf = loader.load_dataset(spec).meta_features()
        except DatasetError as exc:
            if "fashion-mnist is not installed" in str(exc):
                continue
            raise
        sizes.append(mf.n_instances)
        ratios.append(mf.imbalance_ratio)
    assert min(sizes) <= 150 and 8000 <= max(sizes) <= 10_000
    assert min(ratios) < 1.2 and max(ratios) >= 10


# --- real training ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_real_sweep_on_digits(tmp_path):
    space = CPU_SPACE.restrict("tiny", model=["mobilenetv3_small_100"], epochs=[1], resolution=[28],
                               batch_size=[64], scheme=["end_to_end"])
    report = run_sweep(["digits"], trials=2, sampler="random", space=space,
                       storage=tmp_path / "sweeps.sqlite", store_path=tmp_path / "runs.sqlite",
                       trial_time_budget_s=120, progress=False)
    records = RunStore(tmp_path / "runs.sqlite").query()
    assert len(records) == 2
    assert {r.provenance.study for r in records} == {"metallmix:digits:random#0", "metallmix:digits:random#1"}
    assert report.sources[0].finished == 2
    assert all(r.config.model == "mobilenetv3_small_100" and r.config.epochs == 1 for r in records)


# --- the trial count across processes, and workers that die with the sweep ------------------------
def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def _trials(tmp_path: Path, states=None) -> list:
    try:
        study = _study(tmp_path, study_name("fake:a", "random"))
    except KeyError:  # not created yet
        return []
    return study.get_trials(deepcopy=False, states=states)


def test_a_concurrent_session_does_not_exceed_the_trial_count(tmp_path, monkeypatch):
    """Two sessions of the same sweep (a resumed one while the first still runs, as orphaned workers
    did): together they finish exactly `trials` trials, not each its own share."""
    storage, store = tmp_path / "sweeps.sqlite", tmp_path / "runs.sqlite"
    first = mp.get_context("spawn").Process(target=sweep_fakes.slow_sweep,
                                            args=(str(storage), str(store), 6, 1, 0.4))
    first.start()
    try:
        _wait_for(lambda: len(_trials(tmp_path, (TrialState.COMPLETE,))) >= 1, 120,
                  "the first session's first trial")
        monkeypatch.setenv("FAKE_SLEEP_S", "0.4")
        _sweep(tmp_path, trials=6)
        first.join(timeout=120)
        assert first.exitcode == 0
    finally:
        if first.is_alive():
            first.kill()
    study = _study(tmp_path, study_name("fake:a", "random"))
    assert count_finished(study) == 6
    assert RunStore(store).count() == 6  # no run beyond the count was trained
    assert not study.get_trials(states=(TrialState.RUNNING,))


def test_resume_fails_and_retries_the_trial_of_a_dead_process_at_once(tmp_path):
    """A trial left RUNNING by a killed sweep is failed (and retried) when the sweep resumes, without
    waiting for its heartbeat to go stale (the default grace period is a minute)."""
    storage, store = tmp_path / "sweeps.sqlite", tmp_path / "runs.sqlite"
    proc = mp.get_context("spawn").Process(
        target=sweep_fakes.crashing_sweep, args=(str(storage), str(store), 6, 3))
    proc.start()
    proc.join(timeout=120)
    assert proc.exitcode == 3
    stale = _study(tmp_path, study_name("fake:a", "random")).trials[3]
    assert stale.state == TrialState.RUNNING

    report = _sweep(tmp_path, trials=6)  # default heartbeat: 30 s interval, 60 s grace

    study = _study(tmp_path, study_name("fake:a", "random"))
    assert study.trials[3].state == TrialState.FAIL
    retry = next(t for t in study.trials if t.system_attrs.get("failed_trial") == 3)
    assert retry.state == TrialState.COMPLETE and retry.params == stale.params
    assert report.sources[0].finished == 6 == count_finished(study)
    assert RunStore(store).count() == 6


def _gone(pid: int) -> bool:
    """The process has ended (gone, or a zombie nobody reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _children(pid: int) -> set[int]:
    """The processes whose parent is `pid` (Linux)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:  # field 4: ppid
            found.add(int(stat.parent.name))
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; prctl is Linux-only")
def test_workers_die_with_a_killed_parent_and_the_rerun_keeps_the_count(tmp_path):
    import os
    import signal

    storage, store = tmp_path / "sweeps.sqlite", tmp_path / "runs.sqlite"
    parent = mp.get_context("spawn").Process(target=sweep_fakes.slow_sweep,
                                             args=(str(storage), str(store), 4, 2, 300))
    parent.start()
    children: set[int] = set()
    try:
        _wait_for(lambda: len(_trials(tmp_path, (TrialState.RUNNING,))) == 2, 120, "two workers training")
        children = _children(parent.pid)  # the two workers (and multiprocessing's resource tracker)
        assert len(children) >= 2
        os.kill(parent.pid, signal.SIGKILL)
        parent.join(timeout=10)
        # they stop at once on SIGTERM; a loaded machine (CI beside other tests) may take seconds to
        # store the interrupted trials, and the watch thread's hard exit comes ORPHAN_GRACE_S after
        _wait_for(lambda: all(_gone(pid) for pid in children), ORPHAN_GRACE_S + 10,
                  "the orphaned workers to exit")
    finally:
        if parent.is_alive():
            parent.kill()
        for pid in children:  # when the test fails: no orphan outlives it
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)
    # they stopped like Ctrl-C: their trials failed (interrupted), none is left running
    assert not _trials(tmp_path, (TrialState.RUNNING,))
    assert len(_trials(tmp_path, (TrialState.FAIL,))) == 2

    report = _sweep(tmp_path, trials=4, workers=2)
    study = _study(tmp_path, study_name("fake:a", "random"))
    assert report.sources[0].finished == 4 == count_finished(study)
    assert RunStore(store).count() == 4
