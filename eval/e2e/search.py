"""A resumable search for the time-to-match view: Optuna TPE or random search, trials until their
summed training time reaches `max_multiple` x the recommended run's.

The sampler is the sweeps' (`knowledge.sweeps.study.make_sampler`: multivariate TPE whose first
`warmup` trials are random, or RandomSampler), the objective the sweeps' `Objective` (a run that
is not ok fails its trial, so TPE never learns from a made-up number). Each trial may train at most
the time left (the launcher stops it, status 'timeout', and evaluates what it trained), as the
same-time TPE arm (`arms.run_tpe`) does; the search stops when less than `MIN_TRIAL_FRACTION` of
its budget (or 1 s) is left, or after `max_trials`.

Resuming: the trials live in an Optuna SQLite storage (one per dataset, sampler and seed). Each
trial's run summary is stored on the trial (user attribute `e2e`) before it ends, so a restarted
search rebuilds its trial list and cumulative time from the finished trials and asks the sampler
(which reads them from the storage) for the next. A trial that was running when the process died
is marked failed and does not count (its training is lost).

Replaying: a finished search's JSON unit holds its trials; where its storage is gone (the state dir
is committed as text, its SQLite files are not; `restore`), `run_search(replay=...)` adds them to the
empty storage as finished trials with the parameters the sampler drew (`replay_trials`), so a
re-paired search continues where it stopped instead of training them again.

Re-pairing with a shorter budget: the trials that fit it count (`budget_prefix`); the one that ran
past it is run again as the next trial, its config cut at the time left (`recut_of`), which is what
a search given that budget from the start ran, since the draws do not depend on the budget. A
finished search whose counted trials stop short of its budget (a report-restored unit keeps only
those) is not `complete` and is resumed with new draws.

Sampler seeds: derived from the search seed, a salt of its own (`SEED_SALT`) and the number of
trials already stored, so a resumed search does not replay the first session's random draws, and
the draws differ from the sweeps' (`knowledge.sweeps.study.sampler_seed(seed, worker, n)`): the
meta-dataset's own runs come from those sweeps, so with their seed the search's first random
configs are the very configs the advisor ranks (a smoke run on digits drew the recommended config
as random search's first trial). TPE's random warm-up and random search of the same seed still
draw the same first configs (the samplers are paired).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from eval.e2e import arms
from eval.e2e.curves import BUDGET_SLACK, EPS, with_cumulative
from knowledge.datasets.base import ImageDataset
from knowledge.errors import ConfigError, StoreError
from knowledge.search_space import SearchSpace, TrainConfig
from knowledge.sweeps.objective import Objective, RunNotOk, suggest_config
from knowledge.sweeps.study import FINISHED_STATUSES, make_sampler

log = logging.getLogger(__name__)

SAMPLERS = ("tpe", "random")
ATTR = "e2e"
SEED_SALT = 170017  # keeps the e2e searches' draws apart from the sweeps' (module doc)


def search_sampler_seed(seed: int, n_existing: int) -> int:
    """The sampler seed of a search of seed `seed` with `n_existing` stored trials."""
    return int(np.random.SeedSequence([SEED_SALT, seed, n_existing]).generate_state(1)[0])


def paired(search: dict[str, Any], rec_seconds: float) -> bool:
    """Whether a finished search (`run_search`'s result) was run against a recommended run of
    `rec_seconds` training seconds; one paired with an earlier recommended run is re-paired."""
    return abs(float(search.get("rec_seconds") or 0.0) - round(float(rec_seconds), 3)) <= 1e-3


def budget_prefix(trials: list[dict[str, Any]], budget_s: float
                  ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The trials a search given `budget_s` of training counts (in order, while their summed time
    stays within the budget and `curves.BUDGET_SLACK`), and the first trial that ran past it (None when
    none did: a search re-paired with a shorter recommended run holds one). A trial re-run cut at
    this budget (its summary has `recut_of`, `recut_budget`) takes the place of the one it cuts (a
    search's own list, `run_search`'s result, holds the re-cut trial without its original). A trial
    the time limit stopped (status 'timeout') that started within the budget counts and ends the list:
    it was cut at the budget (a long epoch may overshoot it), or at an earlier, longer one."""
    recuts = {t["recut_of"]: t for t in trials if t.get("recut_of") is not None
              and abs(float(t.get("recut_budget") or 0.0) - round(budget_s, 3)) <= 1e-3}
    originals = {t["number"] for t in trials if t.get("recut_of") is None}
    counted: list[dict[str, Any]] = []
    spent = 0.0
    replacing: dict[str, Any] | None = None  # the re-cut of the crossing trial, once it is met
    for t in trials:
        seconds = float(t.get("train_seconds") or 0.0)
        if t.get("recut_of") is not None:  # counted in a list without its original, or in its place
            if recuts.get(t["recut_of"]) is t and (t["recut_of"] not in originals or t is replacing):
                counted.append(t)
                spent += seconds
                replacing = None
                if t.get("status") == "timeout":  # cut at the time left: the last trial
                    return counted, None
            continue
        if replacing is not None:  # a longer budget's trials after the crossing one
            continue
        if spent + seconds <= budget_s * (1 + BUDGET_SLACK) + EPS:
            counted.append(t)
            spent += seconds
            continue
        if t.get("status") == "timeout" and spent < budget_s:  # cut at a budget: the last trial
            return counted + [t], None
        if t["number"] in recuts:  # its re-cut (ended early: the draws after it count too)
            replacing = recuts[t["number"]]
            continue
        return counted, t
    return counted, None


def complete(search: dict[str, Any], rec_seconds: float) -> bool:
    """Whether a finished search is paired with a recommended run of `rec_seconds` and had its
    budget: one whose counted trials stop short of it (the trial that crossed a shorter budget was
    dropped when it was re-paired; a report-restored unit keeps only the counted ones) is resumed."""
    if not paired(search, rec_seconds):
        return False
    if search.get("stopped") != "budget":
        return True
    budget_s = float(search["budget_seconds"])
    counted, _ = budget_prefix(search.get("trials") or [], budget_s)
    spent = sum(float(t.get("train_seconds") or 0.0) for t in counted)
    return budget_s - spent < max(1.0, arms.MIN_TRIAL_FRACTION * budget_s)


def stored_trials(study: optuna.Study) -> list[dict[str, Any]]:
    """The finished trials of a study (a run that ended: ok, failed, diverged, oom, timeout), in
    order, with their run summary and trial number."""
    out = []
    for t in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        summary = t.user_attrs.get(ATTR)
        if t.state in (TrialState.COMPLETE, TrialState.FAIL) and summary \
                and summary.get("status") in FINISHED_STATUSES:
            out.append({"number": t.number, **summary})
    return out


class _Replay:
    """A stand-in for an Optuna trial that answers each `suggest_*` with a stored config's value
    and records the parameter and its distribution (what the sampler drew for that config)."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = TrainConfig(**config).model_dump(mode="json")
        self.params: dict[str, Any] = {}
        self.distributions: dict[str, Any] = {}

    def _value(self, name: str) -> Any:
        if name.endswith("_nonzero") and name not in self.config:
            return bool(self.config[name[: -len("_nonzero")]])
        return self.config[name]

    def _record(self, name: str, dist: Any) -> Any:
        value = self._value(name)
        inside = (value in dist.choices if isinstance(dist, optuna.distributions.CategoricalDistribution)
                  else dist.low <= value <= dist.high)
        if not inside:
            raise StoreError(f"{name} = {value!r} is outside the search space's {dist}")
        self.params[name], self.distributions[name] = value, dist
        return value

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return self._record(name, optuna.distributions.CategoricalDistribution(choices))

    def suggest_int(self, name: str, low: int, high: int, log: bool = False) -> int:
        return self._record(name, optuna.distributions.IntDistribution(low, high, log=log))

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> float:
        return self._record(name, optuna.distributions.FloatDistribution(low, high, log=log))


def replay_trials(study: optuna.Study, trials: list[dict[str, Any]], space: SearchSpace,
                  pretrained_available: Callable[[str], bool]) -> int:
    """Add a finished search's stored trials (its JSON unit's `trials`) to an empty study, as the
    objective left them: complete with the validation accuracy when the run was ok, else failed;
    their run summary in the user attribute `e2e`. StoreError when a trial's config is not one the
    space draws (another space, or an edited file)."""
    for t in sorted(trials, key=lambda t: t["number"]):
        replay = _Replay(t["config"])
        try:
            drawn = suggest_config(replay, space, pretrained_available)  # type: ignore[arg-type]
        except (StoreError, ConfigError) as exc:
            drawn, why = None, f" ({exc})"
        else:
            why = ""
        if drawn is None or drawn != TrainConfig(**t["config"]):
            raise StoreError(f"{study.study_name}: stored trial {t['number']} is not a config of the "
                             f"{space.name} space{why}: {t['config']}")
        ok = t.get("status") == "ok" and t.get("val_acc") is not None
        summary = {k: v for k, v in t.items() if k not in ("number", "cumulative_seconds")}
        study.add_trial(optuna.trial.create_trial(
            params=replay.params, distributions=replay.distributions,
            value=float(t["val_acc"]) if ok else None,
            state=TrialState.COMPLETE if ok else TrialState.FAIL, user_attrs={ATTR: summary}))
    return len(trials)


def _enqueue_recut(study: optuna.Study, crossed: dict[str, Any], space: SearchSpace,
                   trainer: arms.Trainer, budget_s: float) -> dict[str, Any]:
    """Queue the config of the trial that ran past `budget_s` as the next trial (it runs cut at the
    time left, as in a search given this budget from the start: the sampler's draws do not depend
    on the budget); the marks its summary carries (`budget_prefix`)."""
    replay = _Replay(crossed["config"])
    suggest_config(replay, space, trainer.as_backend().pretrained_available)  # type: ignore[arg-type]
    study.enqueue_trial(replay.params, skip_if_exists=False)
    return {"recut_of": crossed["number"], "recut_budget": round(budget_s, 3)}


def _fail_orphans(study: optuna.Study) -> int:
    """Mark the RUNNING trials of an earlier process failed (one process runs a search at a time)."""
    n = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        try:
            study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
            n += 1
        except optuna.exceptions.UpdateFinishedTrialError:
            pass
    return n


def run_search(dataset: ImageDataset, trainer: arms.Trainer, *, sampler: str, seed: int,
               rec_seconds: float, max_multiple: float, space: SearchSpace, warmup: int,
               max_trials: int, storage_url: str, store: Any, num_threads: int | None,
               on_trial: Callable[[dict[str, Any], float, float], None] | None = None,
               replay: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run (or resume) one search; its trials with cumulative times and why it stopped.
    `on_trial(trial, spent, budget)` after each new trial; `replay`: the trials of this search's
    finished unit, added to its storage when the storage holds none (module doc)."""
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}")
    budget_s = max_multiple * rec_seconds
    floor = max(1.0, arms.MIN_TRIAL_FRACTION * budget_s)
    name = arms.study_tag(dataset.id, f"{sampler}-s{seed}")
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        storage = optuna.storages.RDBStorage(storage_url)
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize",
                                    load_if_exists=True)
        if replay and not study.trials:
            n = replay_trials(study, replay, space, trainer.as_backend().pretrained_available)
            log.info("%s: %d stored trial(s) replayed into a new storage", name, n)
        lost = _fail_orphans(study)
        if lost:
            log.info("%s: %d trial(s) in flight when the last process stopped are lost", name, lost)
        trials, crossed = budget_prefix(stored_trials(study), budget_s)
        if trials:
            log.info("%s: resuming after %d finished trial(s)", name, len(trials))
        study.sampler = make_sampler(  # TPE counts its random warm-up over the stored trials
            sampler, seed=search_sampler_seed(seed, len(study.trials)),
            warmup=None if sampler == "random" else warmup)
        objective = Objective(dataset, space, trainer.as_backend(), store=store, seed=seed,
                              num_threads=num_threads)
        spent = sum(float(t.get("train_seconds") or 0.0) for t in trials)
        stopped = "budget"
        while not trials or budget_s - spent >= floor:
            if len(trials) >= max_trials:
                stopped = "max_trials"
                break
            objective.time_budget_s = max(budget_s - spent, 1.0)
            n_before = len(trainer.records)
            recut = None
            if crossed is not None:  # what a search given this budget ran: that config, cut
                recut, crossed = _enqueue_recut(study, crossed, space, trainer, budget_s), None

            def tracked(trial: optuna.Trial) -> float:
                try:
                    return objective(trial)
                finally:  # the summary rides on the trial, stored before the trial ends
                    if len(trainer.records) > n_before:
                        record = trainer.records[-1]
                        trial.set_user_attr(ATTR, {**arms.run_summary(
                            record, trainer.walls.get(record.run_id)), **(recut or {})})

            study.optimize(tracked, n_trials=1, catch=(RunNotOk,))
            if len(trainer.records) == n_before:  # the trial failed before training
                stopped = "trial_error"
                break
            last = study.trials[-1]
            summary = last.user_attrs.get(ATTR) or {}
            if summary.get("status") not in FINISHED_STATUSES:
                stopped = f"run {summary.get('status')}"
                break
            trials.append({"number": last.number, **summary})
            spent += float(summary.get("train_seconds") or 0.0)
            if on_trial is not None:
                on_trial(trials[-1], spent, budget_s)
    finally:
        optuna.logging.set_verbosity(previous)
    return {"sampler": sampler, "seed": seed, "study": name, "space": space.name,
            "warmup_random_trials": warmup if sampler == "tpe" else 0,
            "rec_seconds": round(rec_seconds, 3), "max_multiple": max_multiple,
            "budget_seconds": round(budget_s, 3), "train_seconds": round(spent, 3),
            "stopped": stopped, "trials": with_cumulative(trials)}
