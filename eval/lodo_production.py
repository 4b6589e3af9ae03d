"""Leave-one-dataset-out on the production path: what `recommend()` itself picks for a held-out task.

    from eval.lodo_production import evaluate_production, to_markdown
    report = evaluate_production(records)            # RunRecords: published and/or own
    metallmix eval lodo --path production            # the same from the CLI

`eval.lodo` ranks the held-out task's *recorded* configs; a user never sees that ranking. Here each
fold fits the meta-learner exactly as `metallmix fit` does (`artifact.fit_frame`: calibrated
intervals, blend chosen by grouped CV) on the other base datasets, and calls `recommend()` for each
held-out task with the task's meta-features and a budget, so the candidates, the evidence tiers and
the budget filtering are the ones a user gets.

Budgets (the setting the task's runs were made in, as its user would state it)
    published tasks: no budget (the MedMNIST+ runs trained on GPUs without a time limit);
    own tasks: "CPU only, 2 minutes, offline" on 1 thread (our campaign: a CPU, 1 thread and a 120 s
    training budget per run,
    no internet - so pretrained weights only where they ship with the install, i.e. EfficientNet-
    Lite0; a pick that needs downloaded weights could not have been run, hence not recorded).

Scores
    The pick is *evaluable* when the held-out task has a recorded outcome for exactly that config
    (all eleven fields); it is then scored as in `eval.lodo` (regret normalised by the task's best and
    worst recorded configs, over every recorded config of the task), else counted as unevaluable. A
    task where `recommend` raises (nothing fits) counts as unevaluable too. "Best of top-5" scores
    the best evaluable config of the answer's top five.

    Two other recorded outcomes of exactly the pick also score it (`Outcomes`; marked in the table,
    counted in `n_elsewhere`), normalised by the task's own best and worst configs, regret clipped
    to [0, 1]:
    - *timed out*: the task's own run of the pick hit the 120 s budget; its accuracy at that point
      is what a user with that budget gets (a time forecast that was wrong is thus penalised, not
      hidden);
    - *same data, other setup*: an ok run of the pick on the same data (same `dataset_id`: a full
      MedMNIST set with its official splits) in the other source, e.g. our CPU run of a config on
      BreastMNIST scoring the pick for the published BreastMNIST task.

Intervals
    Coverage of the fold learner's 80 % interval over the held-out outcomes: for every recorded
    config of every held-out task, whether its accuracy lies in [acc_lo, acc_hi] (nominal 80 %),
    with the median width; and the same for the evaluable picks alone.

`candidates="free"` replays the answer of the code before evidence-bounded candidates (the free
sample of the search space), for the before/after comparison.
"""

from __future__ import annotations

import logging
import math
import os
import platform
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from eval.baselines import config_key
from eval.lodo import CONFIG_FIELDS, Task, build_index, build_tasks, records_frame
from knowledge.errors import MetaLLMiXError
from knowledge.metalearner import artifact
from knowledge.metalearner.budget import Budget, parse_budget
from knowledge.metalearner.support import Evidence
from knowledge.metalearner.targets import timing_only
from knowledge.recommend import config_label, recommend
from knowledge.runs.record import RunRecord

log = logging.getLogger(__name__)

OWN_BUDGET = "CPU only, 2 minutes, offline"
OWN_THREADS = 1  # the campaign's runs (sweeps, portfolio): 1 thread per process
PUBLISHED_BUDGET: str | None = None
TOP_K = 5


class Outcomes:
    """Recorded outcomes outside a task's ok configs (module doc): per (dataset_id, config key),
    the timed-out runs' and every source's ok runs' accuracies."""

    def __init__(self, frame: pd.DataFrame) -> None:
        acc = pd.to_numeric(frame.get("out.test_acc"), errors="coerce")
        if "out.val_acc" in frame:
            acc = acc.fillna(pd.to_numeric(frame["out.val_acc"], errors="coerce"))
        cfg = frame[[f"cfg.{f}" for f in CONFIG_FIELDS]].set_axis(list(CONFIG_FIELDS), axis=1)
        self._runs: dict[tuple[str, str], list[tuple[str, str, float]]] = {}
        for (dataset_id, status, source), c, y in zip(
                frame[["dataset_id", "status", "prov.source"]].astype(str).itertuples(index=False),
                cfg.to_dict("records"), acc):
            if status in ("ok", "timeout") and not math.isnan(y):
                self._runs.setdefault((dataset_id, config_key(c)), []).append((status, source, float(y)))

    def find(self, task: Task, key: str) -> tuple[float, str] | None:
        """The pick's outcome on the task outside its ok configs, with how it was found."""
        runs = self._runs.get((task.dataset_id, key), [])
        timed_out = [y for status, source, y in runs if status == "timeout" and source == task.source]
        if timed_out:
            return float(np.mean(timed_out)), "timed out"
        elsewhere = [y for status, source, y in runs if status == "ok" and source != task.source]
        if elsewhere:
            return float(np.mean(elsewhere)), "same data, other setup"
        return None


def score_outcome(task: Task, y: float) -> dict[str, float]:
    """`Task.score` for an accuracy that is not one of the task's configs (regret clipped)."""
    best, worst = float(task.values.max()), float(task.values.min())
    return {"regret": min(1.0, max(0.0, (best - y) / (best - worst))),
            "regret_points": max(0.0, 100.0 * (best - y)),
            "rank": float(1 + int(np.sum(task.values > y)))}


def task_budget(task: Task) -> Budget | str | None:
    """The budget a user in the task's setting states (module doc); own tasks train on 1 thread,
    as the campaign's runs did (`OWN_THREADS`)."""
    if task.source == "published":
        return PUBLISHED_BUDGET
    return parse_budget(OWN_BUDGET).model_copy(update={"threads": OWN_THREADS})


def fit_fold(train: pd.DataFrame, *, seed: int = 0) -> Any:
    """The production fit (`metallmix fit`: `artifact.fit_frame`, XGBoost single-threaded as
    always) on a fold's training records."""
    return artifact.fit_frame(train, seed=seed)


def evaluate_task(task: Task, learner: Any, index: Any, *, held_out: str,
                  evidence: Any = None, outcomes: Outcomes | None = None) -> dict[str, Any]:
    """`recommend()` for one held-out task, its pick scored (module doc), interval coverage."""
    keys = {k: i for i, k in enumerate(task.keys)}
    budget = task_budget(task)
    out: dict[str, Any] = {"task": task.task_id, "dataset_id": task.dataset_id, "source": task.source,
                           "base_dataset": task.base_dataset, "medical": task.medical,
                           "n_configs": len(task.keys),
                           "budget": PUBLISHED_BUDGET if task.source == "published" else OWN_BUDGET}
    started = time.perf_counter()
    try:
        rec = recommend(task.meta, budget=budget, learner=learner, index=index,
                        exclude_base=[held_out], similar_k=1)
    except MetaLLMiXError as exc:
        out.update(evaluable=False, error=str(exc), seconds=time.perf_counter() - started)
        return out
    out["seconds"] = time.perf_counter() - started
    pick_key = config_key(rec.best.config.model_dump())
    pick = keys.get(pick_key)
    found = outcomes.find(task, pick_key) if pick is None and outcomes is not None else None
    supported = (evidence.support(rec.best.config).supported if evidence is not None
                 else rec.best.supported)
    out.update(pick=config_label(rec.best), supported=supported, tier=rec.evidence_tier,
               predicted_acc=rec.best.predicted_acc, acc_lo=rec.best.acc_lo, acc_hi=rec.best.acc_hi,
               evaluable=pick is not None or found is not None)
    if pick is not None:
        y = float(task.values[pick])
        out.update(task.score([pick]), actual_acc=y)
    elif found is not None:
        y, how = found
        out.update(score_outcome(task, y), actual_acc=y, outcome_from=how)
    if out["evaluable"]:
        out["pick_covered"] = bool(rec.best.acc_lo <= y <= rec.best.acc_hi)
    top = [keys[k] for r in rec.top if (k := config_key(r.config.model_dump())) in keys]
    if top:
        out.update({f"{k}_top5": v for k, v in task.score(top).items()})
    # the interval of every recorded config of the task
    pred = learner.predict_frame(task.rows)
    lo, hi = pred["acc_lo"].to_numpy(), pred["acc_hi"].to_numpy()
    inside = (task.values >= lo) & (task.values <= hi)
    out.update(coverage=float(inside.mean()), n_covered=int(inside.sum()),
               widths=[float(w) for w in (hi - lo)])
    return out


def evaluate_production(records: Sequence[RunRecord], *, seed: int = 0, candidates: str = "evidence",
                        bases: Sequence[str] | None = None, progress: bool = True) -> dict[str, Any]:
    """One fold per base dataset (as `eval.lodo`); every task of the held-out base answered by
    `recommend()` (module doc). `candidates="free"` drops the learner's evidence (the old answer)."""
    from tqdm import tqdm

    if candidates not in ("evidence", "free"):
        raise ValueError(f"candidates must be 'evidence' or 'free', got {candidates!r}")
    frame = records_frame(records)
    tasks = build_tasks(frame)
    if bases:
        tasks = [t for t in tasks if t.base_dataset in set(bases)]
    index = build_index(records)
    outcomes = Outcomes(frame[~timing_only(frame)])  # as the tasks: no timing-only runs
    rows: list[dict[str, Any]] = []
    folds = sorted({t.base_dataset for t in tasks})
    started = time.perf_counter()
    for base in tqdm(folds, desc="lodo (production path)", unit="fold", disable=not progress):
        train = frame[frame["base_dataset"].astype(str) != base]
        t0 = time.perf_counter()
        learner = fit_fold(train, seed=seed)
        fit_s = time.perf_counter() - t0
        evidence = learner.support
        if candidates == "free":
            learner.support = Evidence.empty()
        for task in (t for t in tasks if t.base_dataset == base):
            row = evaluate_task(task, learner, index, held_out=base, evidence=evidence,
                                outcomes=outcomes)
            row["fit_s"] = fit_s
            rows.append(row)
            log.info("%s: %s", task.task_id, row.get("pick") or row.get("error"))
    return {
        "kind": "lodo-production",
        "candidates": candidates,
        "budgets": {"published": PUBLISHED_BUDGET, "own": f"{OWN_BUDGET}; {OWN_THREADS} thread"},
        "n_records": len(records),
        "n_tasks": len(rows),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                    "loadavg": os.getloadavg()},
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "summary": {name: summarise(part) for name, part in splits(rows).items()},
        "tasks": rows,
    }


def splits(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out = {"all": list(rows), "medical": [r for r in rows if r["medical"]],
           "non-medical": [r for r in rows if not r["medical"]]}
    for source in sorted({r["source"] for r in rows}):
        out[source] = [r for r in rows if r["source"] == source]
    return {k: v for k, v in out.items() if v}


def summarise(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Regret of the evaluable picks, unevaluable rate, coverage and width (module doc)."""
    scored = [r for r in rows if r.get("evaluable")]
    widths = [w for r in rows for w in r.get("widths", [])]
    n_cfg = sum(len(r.get("widths", [])) for r in rows)
    picks = [r for r in scored if "pick_covered" in r]

    def stat(key: str, fn: Any) -> float | None:
        values = [r[key] for r in scored if key in r]
        return float(fn(values)) if values else None

    return {
        "n_tasks": len(rows),
        "n_evaluable": len(scored),
        "n_elsewhere": sum("outcome_from" in r for r in scored),
        "unevaluable_rate": 1 - len(scored) / len(rows) if rows else math.nan,
        "n_supported": sum(bool(r.get("supported")) for r in rows),
        "regret_mean": stat("regret", np.mean),
        "regret_median": stat("regret", np.median),
        "regret_points_mean": stat("regret_points", np.mean),
        "rank_mean": stat("rank", np.mean),
        "regret_top5_mean": (float(np.mean([r["regret_top5"] for r in rows if "regret_top5" in r]))
                             if any("regret_top5" in r for r in rows) else None),
        "coverage": (sum(r.get("n_covered", 0) for r in rows) / n_cfg) if n_cfg else None,
        "n_intervals": n_cfg,
        "width_median_points": 100 * float(np.median(widths)) if widths else None,
        "pick_coverage": (sum(r["pick_covered"] for r in picks) / len(picks)) if picks else None,
        "pick_width_median_points": (100 * float(np.median([r["acc_hi"] - r["acc_lo"] for r in scored]))
                                     if scored else None),
    }


def _f(value: Any, digits: int = 3, pct: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * value:.1f} %" if pct else f"{value:.{digits}f}"


def to_markdown(report: dict[str, Any]) -> str:
    """The summary table and the per-task picks, as Markdown."""
    lines = [f"Production path (`recommend()` per held-out task), candidates: **{report['candidates']}**; "
             f"{report['n_records']:,} records, {report['n_tasks']} tasks; budgets: published tasks "
             f"{report['budgets']['published'] or 'none'}, own tasks \"{report['budgets']['own']}\"; "
             f"{report['seconds']:.0f} s, load average {report['machine']['loadavg'][0]:.2f}.", "",
             "| split | tasks | unevaluable | regret@1 mean | regret@1 median | regret@1 (points) mean "
             "| best-of-top-5 regret mean | 80 % interval coverage (all recorded configs) | median width "
             "| pick coverage | supported picks | scored by a timed-out or other-setup run |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in report["summary"].items():
        lines.append(
            f"| {name} | {s['n_tasks']} | {_f(s['unevaluable_rate'], pct=True)} | {_f(s['regret_mean'])} | "
            f"{_f(s['regret_median'])} | {_f(s['regret_points_mean'], 2)} | {_f(s['regret_top5_mean'])} | "
            f"{_f(s['coverage'], pct=True)} ({s['n_intervals']}) | "
            f"{_f(s['width_median_points'], 1)} points | {_f(s['pick_coverage'], pct=True)} | "
            f"{s['n_supported']}/{s['n_tasks']} | {s.get('n_elsewhere', 0)} |")
    lines += ["", "| task | budget | pick | tier | predicted [80 %] | actual | regret |",
              "|---|---|---|---|---|---:|---:|"]
    for r in report["tasks"]:
        if "pick" not in r:
            lines.append(f"| {r['task']} | {r['budget'] or 'none'} | error: {r.get('error')} | | | | |")
            continue
        actual = _f(r.get("actual_acc"), pct=True) if r.get("evaluable") else "not recorded"
        if r.get("outcome_from"):
            actual += f" ({r['outcome_from']})"
        lines.append(f"| {r['task']} | {r['budget'] or 'none'} | {r['pick']} | {r['tier']} | "
                     f"{_f(r['predicted_acc'], pct=True)} [{_f(r['acc_lo'], pct=True)}–"
                     f"{_f(r['acc_hi'], pct=True)}] | {actual} | {_f(r.get('regret'))} |")
    return "\n".join(lines) + "\n"
