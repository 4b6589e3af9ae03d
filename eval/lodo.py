"""Leave-one-dataset-out (LODO) benchmark of the meta-learner against simple baselines.

    from eval.lodo import evaluate_lodo, to_markdown
    report = evaluate_lodo(records, seeds=5)        # RunRecords: published and/or own
    print(to_markdown(report))

Design (every choice of the benchmark):

Folds
    One fold per base dataset (`RunRecord.base_dataset`): every variant of the held-out base
    (subsamples, imbalanced versions, ...) is held out with it, in every source. The meta-learner,
    the single-best statistics and the retrieval index of the fold are built from the records of
    all the other bases only (failed runs included: the learner filters them itself).

Tasks
    A task is one held-out (dataset_id, source) group with at least `min_records` (5) successful
    records with an accuracy. Published and own results of the same dataset are different
    experimental setups (100-epoch GPU training vs short CPU runs), so they are separate tasks.
    The candidate set of a task is its recorded configs: records with the same config (all eleven
    `TrainConfig` fields) are one candidate whose accuracy is their mean. A task whose candidates
    all score the same (nothing to choose) is skipped.
    Metric: `out.test_acc`, or `out.val_acc` where the test accuracy is missing (the meta-learner's
    own target, `knowledge.metalearner.model.accuracy_target`); each task records which it used
    (`metric`: test_acc, val_acc or mixed).

Scores of a pick (per task)
    regret = (best - chosen) / (best - worst), normalised to [0, 1] by the task's best and worst
    recorded accuracy; `regret_points` = best - chosen in accuracy points; rank = 1 + the number of
    the task's recorded configs strictly better than the pick. "Top-5" = the best of the method's
    five first choices (its regret and rank).

Methods
    meta-learner     fit on the fold's training records (`MetaLearner.fit`, no interval
                     calibration: only the ranking is scored), score every candidate of the task
                     from the task's meta-features with its ranking score (the accuracy median
                     blended with a pairwise ranker; the weight is chosen by grouped CV over the
                     fold's training bases only, see `knowledge.metalearner.blend`), pick the
                     argmax; top-5 = the five highest scores.
    random           a uniformly random candidate: the exact expected regret and rank (mean over
                     the candidates) and the exact expected best of 5 drawn without replacement.
    single-best      the config with the best mean normalised score (1 - regret) over the fold's
                     training tasks of the held-out task's source (configs recorded on at least
                     half of them; published and own runs are different setups, so a config's
                     average over one says little about the other; all training tasks when that
                     source has none), mapped onto the task's nearest recorded config
                     (`eval.baselines.config_distance`); top-5 = the five best such configs,
                     mapped.
    nearest-dataset  pure retrieval: the most similar training dataset by `RunIndex.similar_runs`
                     (numeric meta-feature similarity; one index over all records, queried with
                     `exclude_base=` the held-out base, so no held-out run can be returned; its
                     feature scaler is fitted on the meta-features of every dataset, the held-out
                     one included: unsupervised statistics, no outcome), its best recorded config
                     mapped the same way; top-5 = its five best configs.
    tpe@N            Optuna's TPE with N = 5, 10, 20 trials over the task's recorded configs
                     (`eval.baselines.tpe_search`: the config fields that vary, looked up as the
                     nearest recorded config); the best config evaluated; mean over `seeds` seeds.
                     It spends N training runs on the target dataset; the others spend none.
    oracle           the best recorded config (regret 0, rank 1).

Aggregates
    Per method, mean and median over tasks (each task counts once) for all tasks, the medical and
    the non-medical ones (`RunRecord.medical`), and per source.

Time to a recommendation (fit excluded)
    `predict_s`: featurize + predict + argmax over the task's candidates; `rank_s`: one full
    `knowledge.metalearner.rank()` call (the ~2,800 default candidate configs) for the task's
    meta-features, what `recommend` does; `retrieve_s`: the nearest-dataset query.
"""

from __future__ import annotations

import logging
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from eval.baselines import (
    CONFIG_FIELDS,
    config_key,  # noqa: F401 - re-exported
    expected_best_of,
    nearest_config,
    single_best_ranking,
    tpe_search,
)

# The tasks and the report live in their own modules; their names are re-exported here.
from eval.lodo_report import HEADERS, splits, summarise, table_rows, timing_summary, to_markdown  # noqa: F401
from eval.lodo_tasks import (  # noqa: F401
    BASE_METHODS,
    MIN_RECORDS,
    TPE_TRIALS,
    Task,
    _groups,
    _meta,
    build_tasks,
    methods,
    records_frame,
)
from knowledge.errors import StoreError
from knowledge.metalearner.blend import BLEND_GRID
from knowledge.metalearner.features import featurize
from knowledge.metalearner.model import ACC_PARAMS, COST_PARAMS, MetaLearner, training_rows
from knowledge.metalearner.ranking import rank
from knowledge.retrieval import RunIndex
from knowledge.retrieval.embeddings import HashingEmbedder
from knowledge.runs.record import RunRecord

log = logging.getLogger(__name__)

TOP_K = 5
DEFAULT_SEEDS = 5


# --- one fold ------------------------------------------------------------------------------------

@dataclass
class Fold:
    """What the baselines learn from the training records of one fold."""

    learner: MetaLearner
    single_best: dict[str, list[dict[str, Any]]]  # source ("*": all) -> configs, best first
    best_configs: dict[tuple[str, str], list[dict[str, Any]]]  # (dataset_id, source) -> best first
    index: Any  # RunIndex over all records; queried with the held-out base excluded
    held_out: str
    train_bases: set[str]


def _config_dicts(rows: pd.DataFrame) -> list[dict[str, Any]]:
    return rows[[f"cfg.{f}" for f in CONFIG_FIELDS]].set_axis(
        list(CONFIG_FIELDS), axis=1).to_dict("records")


def build_index(records: Sequence[RunRecord]) -> Any:
    """The retrieval index of the benchmark: every successful record, queried per fold with the
    held-out base excluded (`similar_runs(exclude_base=...)`). Only the numeric index is used; the
    text index gets a tiny hashing embedder (cheap, deterministic)."""
    return RunIndex.build([r for r in records if r.status == "ok"],
                          embedder=HashingEmbedder(n_features=64))


def prepare_fold(train: pd.DataFrame, held_out: str, index: Any, *,
                 acc_params: dict[str, Any] | None, seed: int,
                 cost_params: dict[str, Any] | None = None,
                 fit_kwargs: dict[str, Any] | None = None) -> Fold:
    """Fit the meta-learner and the baselines' statistics on one fold's training records.

    XGBoost runs single-threaded unless the params say otherwise (`n_jobs`): the benchmark
    machine is shared, and oversubscribed threads make fits slower, not faster."""
    learner = MetaLearner(acc_params={**ACC_PARAMS, "n_jobs": 1, **(acc_params or {})},
                          cost_params={**COST_PARAMS, "n_jobs": 1, **(cost_params or {})})
    learner.fit(train, seed=seed, calibrate=False, **(fit_kwargs or {}))

    rows = _groups(training_rows(train))
    per_config = rows.groupby(["dataset_id", "_source", "_key"], sort=True)["_y"].mean().reset_index()
    scores = []
    for (dataset_id, source), g in per_config.groupby(["dataset_id", "_source"], sort=True):
        best, worst = g["_y"].max(), g["_y"].min()
        if len(g) >= 2 and best > worst and (rows["dataset_id"].eq(dataset_id)
                                             & rows["_source"].eq(source)).sum() >= MIN_RECORDS:
            scores.append(g.assign(task=f"{dataset_id} [{source}]", key=g["_key"],
                                   source=str(source), score=(g["_y"] - worst) / (best - worst)))
    key_config = dict(zip(rows["_key"], _config_dicts(rows)))
    single: dict[str, list[dict[str, Any]]] = {}
    if scores:
        every = pd.concat(scores)
        for source, part in [("*", every), *every.groupby("source", sort=True)]:
            single[str(source)] = [key_config[k] for k in single_best_ranking(part)[:TOP_K]]
    best_configs = {}
    for (dataset_id, source), g in per_config.groupby(["dataset_id", "_source"], sort=True):
        ordered = g.sort_values(["_y", "_key"], ascending=[False, True])["_key"][:TOP_K]
        best_configs[(str(dataset_id), str(source))] = [key_config[k] for k in ordered]
    return Fold(learner=learner, single_best=single, best_configs=best_configs, index=index,
                held_out=held_out, train_bases=set(train["base_dataset"].astype(str)))


def evaluate_task(task: Task, fold: Fold, *, seeds: int = DEFAULT_SEEDS,
                  tpe_trials: Sequence[int] = TPE_TRIALS, time_rank: bool = True) -> dict[str, Any]:
    """Every method's scores on one task (module doc), plus the recommendation times."""
    configs = task.configs
    results: dict[str, dict[str, Any]] = {}

    def pick(name: str, positions: Sequence[int]) -> None:
        top1 = task.score(positions[:1])
        top5 = task.score(positions[:TOP_K])
        results[name] = {**top1, **{f"{k}_top5": v for k, v in top5.items()},
                         "pick": task.keys[positions[0]]}

    # meta-learner: featurize + predict + argmax of the ranking score (timed)
    start = time.perf_counter()
    predicted = fold.learner.predict(featurize(task.rows), intervals=False)["score"].to_numpy()
    order = np.argsort(-predicted, kind="stable")
    predict_s = time.perf_counter() - start
    pick("meta-learner", [int(i) for i in order[:TOP_K]])

    # random: exact expectations
    best, worst = float(task.values.max()), float(task.values.min())
    regrets = (best - task.values) / (best - worst)
    ranks = np.array([1 + int(np.sum(task.values > v)) for v in task.values], dtype=float)
    results["random"] = {
        "regret": float(regrets.mean()),
        "regret_points": float(100 * (best - task.values).mean()),
        "rank": float(ranks.mean()),
        "regret_top5": expected_best_of(task.values, TOP_K, regrets),
        "regret_points_top5": expected_best_of(task.values, TOP_K, 100 * (best - task.values)),
        "rank_top5": expected_best_of(task.values, TOP_K, ranks),
    }

    # single best config of the training datasets, mapped onto the task
    single = fold.single_best.get(task.source) or fold.single_best.get("*")
    if single:
        pick("single-best", [nearest_config(c, configs) for c in single])

    # nearest training dataset (retrieval), its best configs mapped onto the task
    start = time.perf_counter()
    hits = fold.index.similar_runs(task.meta, k=1, exclude_base=[fold.held_out])
    retrieve_s = time.perf_counter() - start
    if hits:
        neighbour = (hits[0].dataset_id, hits[0].source)
        pick("nearest-dataset", [nearest_config(c, configs) for c in fold.best_configs[neighbour]])
        results["nearest-dataset"]["neighbour"] = f"{neighbour[0]} [{neighbour[1]}]"

    # Optuna TPE with N trials on the task itself, mean over seeds
    for n in tpe_trials:
        runs = [task.score(tpe_search(configs, task.values, n, seed)) for seed in range(seeds)]
        results[f"tpe@{n}"] = {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}

    results["oracle"] = {**task.score([int(np.argmax(task.values))]),
                         **{f"{k}_top5": v for k, v in task.score([int(np.argmax(task.values))]).items()}}

    timing = {"predict_s": predict_s, "retrieve_s": retrieve_s}
    if time_rank:
        start = time.perf_counter()
        rank(task.meta, fold.learner, top_k=TOP_K)
        timing["rank_s"] = time.perf_counter() - start
    return {
        "task": task.task_id, "dataset_id": task.dataset_id, "source": task.source,
        "base_dataset": task.base_dataset, "medical": task.medical, "metric": task.metric,
        "n_records": task.n_records, "n_configs": len(task.keys),
        "best_acc": best, "worst_acc": worst, "results": results, "time": timing,
    }


# --- the benchmark -------------------------------------------------------------------------------

def evaluate_lodo(
    records: Sequence[RunRecord],
    *,
    seeds: int = DEFAULT_SEEDS,
    tpe_trials: Sequence[int] = TPE_TRIALS,
    min_records: int = MIN_RECORDS,
    acc_params: dict[str, Any] | None = None,
    cost_params: dict[str, Any] | None = None,
    fit_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    time_rank: bool = True,
    progress: bool | Callable[[str], None] = False,
) -> dict[str, Any]:
    """Run the LODO benchmark (module doc) on `records`; a JSON-ready report.

    `acc_params` / `cost_params` override the meta-learner's XGBoost parameters (e.g. fewer trees
    in tests) and
    `fit_kwargs` are passed to `MetaLearner.fit` (e.g. `source_weight`). `progress`: True for a
    tqdm bar over the folds. StoreError when no task has enough records.
    """
    started = time.perf_counter()
    records = list(records)
    frame = records_frame(records)
    tasks = build_tasks(frame, min_records=min_records) if len(frame) else []
    if not tasks:
        raise StoreError(f"no dataset has at least {min_records} successful runs with an accuracy "
                         f"among the {len(records)} records: nothing to evaluate")
    bases = sorted({t.base_dataset for t in tasks})
    if len(set(frame["base_dataset"])) < 2:
        raise StoreError("leave-one-dataset-out needs records of at least 2 base datasets")
    from tqdm import tqdm

    index = build_index(records)
    per_task: list[dict[str, Any]] = []
    folds: list[dict[str, Any]] = []
    for base in tqdm(bases, desc="LODO folds", unit="fold", disable=progress is not True):
        held = frame["base_dataset"].astype(str).eq(base).to_numpy()
        train = frame.loc[~held]
        if len(training_rows(train)) < 10:
            log.warning("fold %s skipped: too few training records", base)
            continue
        start = time.perf_counter()
        fold = prepare_fold(train, base, index, acc_params=acc_params, cost_params=cost_params,
                            seed=seed, fit_kwargs=fit_kwargs)
        fit_s = time.perf_counter() - start
        assert base not in fold.train_bases  # the held-out base never reaches the fit
        fold_tasks = [t for t in tasks if t.base_dataset == base]
        for task in fold_tasks:
            per_task.append(evaluate_task(task, fold, seeds=seeds, tpe_trials=tpe_trials,
                                          time_rank=time_rank))
        folds.append({"held_out": base, "n_train_records": int(len(training_rows(train))),
                      "n_tasks": len(fold_tasks), "fit_s": round(fit_s, 3),
                      "blend": fold.learner.blend, "blend_cv": fold.learner.blend_cv})
    usable = training_rows(frame)
    sources = usable["prov.source"].value_counts().sort_index() if len(usable) else pd.Series()
    report = {
        "benchmark": "leave-one-dataset-out",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": {
            "seeds": seeds, "tpe_trials": list(tpe_trials), "min_records": min_records,
            "top_k": TOP_K, "seed": seed,
            "acc_params": {**ACC_PARAMS, "n_jobs": 1, **(acc_params or {})},
            "rank_params": "the accuracy model's (acc_params)",
            "blend_grid": list(BLEND_GRID),
            "cost_params": {**COST_PARAMS, "n_jobs": 1, **(cost_params or {})},
            "fit_kwargs": {k: v for k, v in (fit_kwargs or {}).items()},
            "metric": "out.test_acc, out.val_acc where the test accuracy is missing",
        },
        "machine": {"platform": platform.platform(), "processor": platform.processor() or None,
                    "cpu_count": os.cpu_count()},
        "records": {"total": len(records), "usable": int(len(usable)),
                    "by_source": {str(k): int(v) for k, v in sources.items()}},
        "methods": methods(tpe_trials),
        "folds": folds,
        "tasks": per_task,
        "summary": summarise(per_task, methods(tpe_trials)),
        "timing": timing_summary(per_task, folds),
        "total_s": round(time.perf_counter() - started, 2),
    }
    return report
