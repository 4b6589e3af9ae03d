"""`run_time_to_match`: how much searching it takes to reach the zero-shot pick (issue 17).

Per held-out dataset (each held out with all its variants, the meta-learner refitted without it):

1. plan (once, cached in the state dir): fit without the base dataset, the advisor's production
   `recommend()` under the budget, the best of its picks that can be trained here;
2. per seed (`seeds`, default 0 1 2): the recommended config, the search space's default config
   on a practitioner's model and a practitioner's fine-tune default (`arms.PRACTITIONER_*_TEXT`:
   ResNet-18, resp. the first pretrained model available; independent of the recommendation);
3. per search seed (`search_seeds`, default 0 1) and sampler (TPE, random): a search whose trials
   run until their summed training time reaches `max_multiple` (10) x the training time of the
   recommended run of the same seed (`search`); the incumbent curve, its test accuracy at 1x, 3x
   and 10x, and the speed-up (`curves`);
4. `same_time`: once every seed's space-default run is done, the advisor's pick for a budget equal
   to their mean training time ("what the advisor picks given the default's time"; unit
   `plan-sametime`), trained on the same seeds (a pick equal to the default reuses its runs).

Every unit is stored in the state dir once finished (`state`): a rerun of the same command skips
finished units and resumes a search from its finished trials; datasets run in separate commands
(parts) merge into one report, built from the whole state dir (`summary`). When the run store's
evidence changed since a dataset was planned (runs added, e.g. a portfolio run; the benchmark's own
runs do not count) or the learner's definition or the advisor's rules did (`advisor_fingerprint`),
the dataset is planned again: a recommended run of another config is made again, and a finished search is
re-paired with the new recommended run of its seed (resumed up to 10x its time: trials beyond no
longer count, the one crossing it is run again cut there, `search.budget_prefix`; as is a search
short of its budget). Long runs go in the background, their state in the repo (`restore`):

    METALLMIX_DATA=../shared/data/medmnist nohup metallmix eval e2e --all-offline --time-to-match \\
        --budget "CPU only, 1 minute" --state-dir eval/results/e2e_state --no-progress > e2e.log 2>&1 &
    # stopped or crashed? run the same command again: finished units are skipped (tail -f e2e.log)

Two commands may share a state dir when they hold out different datasets (e.g. `--threads 1` each on
a 2-core machine; each unit records the threads it trained with and the load when it ended);
`--report-only` then writes the report of every dataset in it without training.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from eval.e2e import arms, offline
from eval.e2e.fold import base_datasets, fit_without
from eval.e2e.pipeline import (
    LIMIT_FACTOR,
    TPE_WARMUP,
    LogProgress,
    Progress,
    default_budget_text,
    machine,
    majority_class_acc,
)
from eval.e2e.search import SAMPLERS, complete, paired, run_search
from eval.e2e.state import StateDir
from eval.e2e.summary import build_report
from knowledge import paths
from knowledge.datasets.base import ImageDataset
from knowledge.errors import ConfigError, DatasetError, TrainingError
from knowledge.meta_dataset.shipped import open_store
from knowledge.metalearner.budget import Budget, parse_budget
from knowledge.recommend import budget_text, recommend
from knowledge.recommend.algorithm import advisor_fingerprint
from knowledge.runs.store import RunStore
from knowledge.search_space import CPU_SPACE, SearchSpace, TrainConfig
from knowledge.sweeps import backend as sweep_backend
from knowledge.sweeps.backend import Backend

log = logging.getLogger(__name__)

SEEDS = (0, 1, 2)
SEARCH_SEEDS = (0, 1)
MAX_MULTIPLE = 10.0
SEARCH_MAX_TRIALS = 300
TRAINED_ARMS = ("recommended", "default", "finetune")
OVERHEAD = 1.3  # wall time per training second (model building, evaluation), for the estimate


def default_state_dir() -> Path:
    """`<home>/e2e-state` (METALLMIX_HOME)."""
    return paths.home() / "e2e-state"


def estimate_seconds(n_datasets: int, budget: Budget, *, seeds: int, search_seeds: int,
                     samplers: int, max_multiple: float, limit_factor: float | None,
                     default_limit_s: float | None) -> float:
    """A rough upper estimate of the wall time: the recommended run taken as the budget's whole
    time (capped by the limit), a default run as long as `default_limit_s` or twice that."""
    rec = float(budget.max_seconds or 300.0) * min(1.0, limit_factor or 1.0)
    default = default_limit_s or 2 * rec
    per_dataset = seeds * (rec + 2 * default) + search_seeds * samplers * max_multiple * rec
    return OVERHEAD * n_datasets * per_dataset


def evidence_key(records: Sequence[Any]) -> str:
    """A short fingerprint of the evidence a plan is made from (the ids of the run store's records
    outside the benchmark's own runs): another key means another meta-learner fit."""
    digest = hashlib.sha1("\n".join(sorted(str(r.run_id) for r in records)).encode())
    return f"{len(records)}:{digest.hexdigest()[:12]}"


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def run_time_to_match(
    specs: Sequence[str] = (),
    *,
    all_offline: bool = False,
    exclude: Sequence[str] = (),
    budget: str | None = None,
    store: Any = None,
    fit_seed: int = 0,
    seeds: Sequence[int] = SEEDS,
    search_seeds: Sequence[int] = SEARCH_SEEDS,
    samplers: Sequence[str] = SAMPLERS,
    max_multiple: float = MAX_MULTIPLE,
    tpe_warmup: int = TPE_WARMUP,
    max_trials: int = SEARCH_MAX_TRIALS,
    space: SearchSpace = CPU_SPACE,
    limit_factor: float | None = LIMIT_FACTOR,
    default_limit_s: float | None = None,
    device: str | None = None,
    num_threads: int | None = None,
    download_weights: bool = False,
    published_csv: str | Path | None = None,
    state_dir: str | Path | None = None,
    backend: Backend | None = None,
    progress: Progress | None = None,
    checkpoint: Callable[[dict[str, Any]], None] | None = None,
    report_only: bool = False,
    same_time: bool = True,
) -> dict[str, Any]:
    """The time-to-match benchmark (module doc); a JSON-ready report of every dataset in the state
    dir. ConfigError / DatasetError / StoreError before any training for bad input.
    `report_only`: plan and train nothing, report what the state dir holds."""
    started = time.perf_counter()
    progress = progress or LogProgress()
    backend = backend or sweep_backend.REAL
    seeds, search_seeds = list(dict.fromkeys(seeds)), list(dict.fromkeys(search_seeds))
    if not seeds:
        raise ConfigError("give at least one seed")
    missing = [s for s in search_seeds if s not in seeds]
    if missing:
        raise ConfigError(f"search seed(s) {missing} are not among the seeds {seeds}: a search is "
                          "paired with the recommended run of its seed")
    unknown = [s for s in samplers if s not in SAMPLERS]
    if unknown:
        raise ConfigError(f"unknown sampler(s) {unknown}; allowed: {', '.join(SAMPLERS)}")
    if not max_multiple > 0:
        raise ConfigError(f"the budget multiple must be positive, got {max_multiple:g}")
    if limit_factor is not None and not limit_factor > 0:
        raise ConfigError(f"the limit factor must be positive, got {limit_factor:g}")
    all_specs = list(dict.fromkeys([*(offline.ALL_OFFLINE if all_offline else ()), *specs]))
    if not all_specs and not report_only:
        raise ConfigError("no dataset given: name at least one (e.g. medmnist:breastmnist) or "
                          "use --all-offline")
    budget_spec = budget or default_budget_text(device)
    parsed = parse_budget(budget_spec).model_copy(update={"threads": num_threads})  # the runs' threads
    run_store = store if isinstance(store, RunStore) else open_store(store)
    # the benchmark's own runs never train its meta-learner: a dataset planned in a later part (or
    # after a crash) must see the same evidence as one planned first
    records = [r for r in run_store.query()
               if not arms.is_benchmark_run(r.provenance.study)]
    known = base_datasets(records)
    evidence = evidence_key(records)
    extra = sorted({e.strip().lower() for e in exclude if e.strip()})
    for name in extra:
        if name not in known:
            raise DatasetError(f"--exclude {name!r} names no base dataset of the run store "
                               f"{run_store.path}")
    if report_only:  # the report covers the state dir's datasets: nothing to load
        loaded, skipped = [], []
    elif all_offline:
        loaded, skipped = offline.available(all_specs, backend.load_dataset)
        for line in skipped:
            progress.stage("e2e", line)
    else:
        loaded, skipped = [(s, backend.load_dataset(s)) for s in all_specs], []
    if not loaded and not report_only:
        raise DatasetError("none of the datasets is available here: " + "; ".join(skipped))

    settings = {
        "budget": budget_spec, "exclude": extra, "fit_seed": fit_seed,
        "limit_factor": limit_factor, "default_limit_s": default_limit_s, "space": space.name,
        "tpe_warmup": tpe_warmup, "max_multiple": max_multiple, "max_trials": max_trials,
        "download_weights": download_weights, "store": str(run_store.path)}
    state = StateDir(state_dir or default_state_dir())
    if report_only and not state.plans():
        raise ConfigError(f"the state dir {state.root} holds no planned dataset: nothing to report")
    state.check_settings(settings)
    learner, legacy_learner = advisor_fingerprint(), state.legacy("learner")

    def outdated(planned: dict[str, Any]) -> str | None:
        """Why a stored plan is not this run's (other evidence, or another learner's: mixed advisors)."""
        for what, was, now in (("the run store's evidence", planned.get("evidence"), evidence),
                               ("the meta-learner's definition",
                                planned.get("learner", legacy_learner), learner)):
            if was != now:
                return f"{what} changed since it was planned ({was or 'unrecorded'} -> {now})"
        return None
    estimate = estimate_seconds(len(loaded), parsed, seeds=len(seeds), search_seeds=len(search_seeds),
                                samplers=len(samplers), max_multiple=max_multiple,
                                limit_factor=limit_factor, default_limit_s=default_limit_s)
    n_units = len(loaded) * (1 + len(TRAINED_ARMS) * len(seeds) + len(samplers) * len(search_seeds))
    progress.stage("e2e", f"{len(loaded)} dataset(s), {n_units} units (plan, {len(seeds)} seeds x "
                   f"{len(TRAINED_ARMS)} arms, {len(samplers)} searches x {len(search_seeds)} seeds "
                   f"up to {max_multiple:g}x the recommended run); budget \"{budget_spec}\"; "
                   f"at most about {_hours(estimate)} from scratch (finished units are skipped); "
                   f"state in {state.root}")
    context = dict(settings=settings, state=state, seeds=seeds, search_seeds=search_seeds,
                   samplers=list(samplers), published_csv=published_csv, machine=machine(device),
                   store=str(run_store.path), skipped=skipped)
    done = [0]

    def save(dataset: ImageDataset, unit: str, data: dict[str, Any]) -> None:
        # the machine's load when the unit ended: timings on a shared 2-core machine need it
        state.save(dataset.id, unit, {**data, "load_avg": [round(x, 2) for x in os.getloadavg()],
                                      "threads": num_threads or os.cpu_count()})
        done[0] += 1
        if checkpoint is not None:
            checkpoint(build_report(**context, total_s=time.perf_counter() - started))

    trainer = arms.Trainer(backend, device=device, on_event=progress.event)

    def train_unit(dataset: ImageDataset, unit: str, arm: str, config: TrainConfig, seed: int,
                   limit: float | None) -> None:
        """Train one arm's run of one seed and store it as `unit`."""
        record = trainer(dataset, config, seed=seed, time_budget_s=limit, num_threads=num_threads,
                         store=run_store, study=arms.study_tag(dataset.id, unit))
        save(dataset, unit, {**arms.run_summary(record, trainer.walls[record.run_id]),
                             "seed": seed, "arm": arm, "time_limit_s": limit})

    def run_same_time(spec: str, dataset: ImageDataset, default: TrainConfig) -> None:
        """Item 4 of the module doc."""
        did = dataset.id
        runs = [state.load(did, f"default-s{seed}") for seed in seeds]
        if any(u is None or not u.get("train_seconds") for u in runs):
            return
        budget_s = round(sum(u["train_seconds"] for u in runs) / len(runs), 1)
        planned = state.load(did, "plan-sametime")
        if planned is None or outdated(planned) or planned["budget_s"] != budget_s:
            progress.stage(spec, f"same time as the default: recommending for {budget_s:g} s")
            same = _plan(spec, dataset, records, known=known, extra=extra, fit_seed=fit_seed,
                         budget=Budget(device="cpu", max_seconds=budget_s, threads=num_threads),
                         limit_factor=limit_factor, backend=backend,
                         download_weights=download_weights, progress=progress)
            planned = {"budget_s": budget_s, "evidence": evidence, "learner": learner,
                       "recommended": same["recommended"], "top": same["recommendation"]["top"]}
            save(dataset, "plan-sametime", planned)
        config = TrainConfig(**planned["recommended"]["config"])
        for seed, default_run in zip(seeds, runs):
            unit = f"sametime-s{seed}"
            if arms.unit_matches(state.load(did, unit), config):
                continue
            if config == default and arms.unit_matches(default_run, default):  # same seed, same run
                save(dataset, unit, {**default_run, "arm": "sametime", "reused": f"default-s{seed}"})
                continue
            progress.stage(spec, f"seed {seed}: training the same-time pick: {arms.label(config)}")
            train_unit(dataset, unit, "sametime", config, seed, planned["recommended"]["time_limit_s"])
    for spec, dataset in loaded:
        plan = state.load(dataset.id, "plan")
        why = outdated(plan) if plan is not None else None
        if why:
            progress.stage(spec, f"{why}: planned again (a recommended run of another config is "
                                 "made again, the searches are re-paired with it)")
            plan = None
        if plan is None:
            plan = {**_plan(spec, dataset, records, known=known, extra=extra, budget=parsed,
                            fit_seed=fit_seed, limit_factor=limit_factor, backend=backend,
                            download_weights=download_weights, progress=progress),
                    "evidence": evidence, "learner": learner}
            save(dataset, "plan", plan)
        current = _default_configs(backend, download_weights, int(plan["native_px"]))
        if any(plan.get(k) != v for k, v in current.items()):  # planned with other default arms:
            progress.stage(spec, "the default arms changed since this dataset was planned: their "
                                 "runs are made again (the recommended arm and the searches are kept)")
            plan = {**plan, **current}
            state.save(dataset.id, "plan", plan)
        chosen = TrainConfig(**plan["recommended"]["config"])
        configs = {"recommended": chosen, "default": TrainConfig(**plan["default_config"]),
                   "finetune": TrainConfig(**plan["finetune_config"])}
        limits = {"recommended": plan["recommended"]["time_limit_s"], "default": default_limit_s,
                  "finetune": default_limit_s}
        for seed in seeds:
            for arm in TRAINED_ARMS:
                unit = f"{arm}-s{seed}"
                if arms.unit_matches(state.load(dataset.id, unit), configs[arm]):
                    continue
                progress.stage(spec, f"seed {seed}: training the {arm} config: "
                                     f"{arms.label(configs[arm])}")
                train_unit(dataset, unit, arm, configs[arm], seed, limits[arm])
            if seed not in search_seeds:
                continue
            rec_run = state.load(dataset.id, f"recommended-s{seed}") or {}
            rec_seconds = float(rec_run.get("train_seconds") or 0.0)
            if rec_seconds <= 0:
                progress.stage(spec, f"seed {seed}: the recommended run has no training time "
                                     f"({rec_run.get('status')}); no search for this seed")
                continue
            for sampler in samplers:
                unit = f"{sampler}-s{seed}"
                done_search = state.load(dataset.id, unit)
                if done_search is not None and complete(done_search, rec_seconds):
                    continue
                if done_search is not None:
                    why = ("it stopped short of its budget" if paired(done_search, rec_seconds) else
                           f"the recommended run changed ({done_search.get('rec_seconds')} s -> "
                           f"{rec_seconds:.3f} s of training)")
                    progress.stage(spec, f"seed {seed}: the {sampler} search resumes: {why}")
                progress.stage(spec, f"seed {seed}: {sampler} search over {space.name} for up to "
                                     f"{max_multiple * rec_seconds:.0f} s of training "
                                     f"({max_multiple:g}x {rec_seconds:.0f} s)")

                def on_trial(trial: dict[str, Any], spent: float, total: float,
                             _s: str = spec, _name: str = sampler) -> None:
                    progress.stage(_s, f"  {_name} trial {trial['number']}: {trial['status']} "
                                       f"val {trial['val_acc']} test {trial['test_acc']}; "
                                       f"{spent:.0f}/{total:.0f} s")

                result = run_search(
                    dataset, trainer, sampler=sampler, seed=seed, rec_seconds=rec_seconds,
                    max_multiple=max_multiple, space=space, warmup=tpe_warmup,
                    max_trials=max_trials, storage_url=state.storage_url(dataset.id, unit),
                    store=run_store, num_threads=num_threads, on_trial=on_trial,
                    replay=(done_search or {}).get("trials"))
                save(dataset, unit, result)
        if same_time:
            run_same_time(spec, dataset, configs["default"])
        progress.stage(spec, "done")
    report = build_report(**context, total_s=time.perf_counter() - started)
    progress.stage("e2e", f"{done[0]} unit(s) run in {time.perf_counter() - started:.0f} s")
    return report


def _default_configs(backend: Backend, download_weights: bool, native_px: int) -> dict[str, Any]:
    """The two default arms' configs (`arms.practitioner_*`), as the plan stores them."""
    def ok(model: str) -> bool:
        return download_weights or bool(backend.pretrained_available(model))

    return {"default_config": arms.practitioner_default(ok).model_dump(mode="json"),
            "finetune_config": arms.practitioner_finetune(ok, native_px).model_dump(mode="json")}


def _plan(spec: str, dataset: ImageDataset, records: list, *, known: set[str], extra: list[str],
          budget: Budget, fit_seed: int, limit_factor: float | None, backend: Backend,
          download_weights: bool, progress: Progress) -> dict[str, Any]:
    """Fit without the dataset's base, recommend (the production path), choose what to train."""
    base = dataset.base.lower()
    notes: list[str] = []
    if base not in known:
        notes.append(f"the run store holds no record of base dataset {base!r}: nothing of it to "
                     "leave out")
    progress.stage(spec, f"fitting the meta-learner without {', '.join(sorted({base, *extra}))}")
    fit = fit_without(records, {base, *extra}, seed=fit_seed)
    progress.stage(spec, f"analyzing and recommending (fit took {fit.fit_s:.0f} s)")
    meta = dataset.meta_features()
    rec = recommend(meta, learner=fit.learner, index=fit.index, budget=budget,
                    exclude_base=fit.held_out, dataset=spec)

    def why_not(config: TrainConfig) -> str | None:
        if config.pretrained and not download_weights and not backend.pretrained_available(config.model):
            return f"no pretrained {config.model} weights available offline"
        return None

    chosen = arms.pick_recommended(rec, why_not)
    skipped: dict[str, Any] = {"count": 0, "shown": []}
    if chosen is None:
        try:
            chosen, skipped = arms.pick_trainable(meta, fit.learner, budget, why_not)
        except TrainingError as exc:
            raise TrainingError(f"{spec}: {exc}") from None
    if chosen.rank != rec.best.rank:
        notes.append(f"the advisor's best needs pretrained weights that are not available here; "
                     f"its rank-{chosen.rank} config was trained")
    limit = (budget.max_seconds * limit_factor
             if budget.max_seconds is not None and limit_factor is not None else None)
    h, w, _ = dataset.image_shape()
    return {
        "dataset": spec, "dataset_id": dataset.id, "base_dataset": base,
        "planned_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "splits": {name: (len(s) if s is not None else 0) for name, s in
                   (("train", dataset.train), ("val", dataset.val), ("test", dataset.test))},
        "native_px": max(h, w), "meta_features": meta.model_dump(mode="json"),
        "majority_class_acc": majority_class_acc(dataset), "fit": fit.summary(),
        "recommendation": {
            "budget": budget_text(rec), "best": arms.ranked_view(rec.best),
            "top": [r.summary() for r in rec.top], "trained_rank": chosen.rank,
            "skipped": skipped, "explanation": [f.text for f in rec.explanation.factors],
            "similar_runs": [h.card for h in rec.similar_runs], "notes": rec.notes,
            "seconds": rec.seconds},
        "recommended": {**arms.ranked_view(chosen), "time_limit_s": limit},
        **_default_configs(backend, download_weights, max(h, w)),
        "notes": notes,
    }
