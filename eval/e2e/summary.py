"""The time-to-match report, assembled from the state dir (every dataset planned there, so parts run
by separate commands merge into one report).

Two views:

- `report['datasets']`: the original same-time view (`report.to_markdown`, `report.figure`), for
  the first search seed: its recommended and default runs, and TPE cut at 1x the recommended run's
  training time (the trials that ended by then; unlike the original arm, a trial running across
  1x is not stopped there, so it is not counted). Only datasets with all three runs appear.
- `report['match']`: per dataset the arms over seeds (test accuracy mean ± std), the searches'
  incumbent at 1x / 3x / 10x and the speed-ups (`curves`), paired by seed; and across datasets the
  median speed-up per sampler (the median over datasets of each dataset's median over seeds); and
  the same-time view (`same_time`: the advisor's pick given the space default's training time).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from eval.e2e import arms, curves
from eval.e2e.published import CITATION, published_results
from eval.e2e.report import compare
from eval.e2e.search import budget_prefix, paired
from eval.e2e.state import StateDir
from knowledge.recommend.algorithm import advisor_fingerprint
from knowledge.search_space import TrainConfig

ARMS = ("recommended", "default", "finetune")


def _gap(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    if a["mean"] is None or b["mean"] is None:
        return None
    return round(100 * (a["mean"] - b["mean"]), 2)


def match_entry(plan: dict[str, Any], state: StateDir, *, seeds: list[int], search_seeds: list[int],
                samplers: list[str], max_multiple: float) -> dict[str, Any]:
    """One dataset's time-to-match block (module doc)."""
    did = plan["dataset_id"]
    configs = {"recommended": plan["recommended"]["config"], "default": plan["default_config"],
               "finetune": plan["finetune_config"]}
    runs = {arm: [u for s in seeds
                  if arms.unit_matches(u := state.load(did, f"{arm}-s{s}"), TrainConfig(**configs[arm]))]
            for arm in ARMS}
    arms_view = {arm: {"runs": runs[arm],
                       "test_acc": curves.mean_std(r["test_acc"] for r in runs[arm]),
                       "train_seconds": curves.mean_std(r["train_seconds"] for r in runs[arm])}
                 for arm in ARMS}
    rec_by_seed = {r["seed"]: r for r in runs["recommended"]}
    searches: dict[str, Any] = {}
    finished: list[dict[str, Any]] = [r for rs in runs.values() for r in rs]  # units, for the load
    for sampler in samplers:
        per_seed = []
        for seed in search_seeds:
            search, rec = state.load(did, f"{sampler}-s{seed}"), rec_by_seed.get(seed)
            finished += [search] if search is not None else []
            if search is None or rec is None or not paired(search, rec.get("train_seconds") or 0.0):
                continue  # not run yet, or run against an earlier recommended run (re-paired next)
            covered = (search["budget_seconds"] if search["stopped"] == "budget"
                       else search["train_seconds"])
            # the trials the search counts (one re-paired with a shorter recommended run may hold more)
            trials = curves.with_cumulative(budget_prefix(search["trials"], covered)[0])
            summary = curves.search_summary(trials, search["rec_seconds"],
                                            rec["test_acc"], max_multiple, covered_seconds=covered)
            per_seed.append({"seed": seed, **summary, "stopped": search["stopped"],
                             "trials": trials})
        speeds = [s["speed_up"] for s in per_seed]
        searches[sampler] = {
            "runs": per_seed,
            "acc_at": {f"{m:g}": curves.mean_std(s["acc_at"][f"{m:g}"] for s in per_seed)
                       for m in curves.MULTIPLES},
            "speed_up_median": curves.median_multiple(speeds, max_multiple)}
    loads = sorted(float(u["load_avg"][0]) for u in finished if u.get("load_avg"))
    threads = sorted({int(u["threads"]) for u in finished if u.get("threads")})
    # the CPU each run trained on: a state dir restored on another machine holds both (`restore`)
    devices = sorted({str(r["device"]) for u in finished for r in [u, *u.get("trials", [])]
                      if r.get("device")})
    load = ({"n": len(loads), "median": loads[len(loads) // 2], "max": loads[-1],
             "threads": threads, "cpus": os.cpu_count(), "devices": devices} if loads else None)
    expected = len(ARMS) * len(seeds) + len(samplers) * len(search_seeds)
    found = sum(len(r) for r in runs.values()) + sum(len(s["runs"]) for s in searches.values())
    rec = arms_view["recommended"]["test_acc"]
    same = same_time_entry(state, did, seeds, arms_view["default"]["test_acc"], searches)
    learner = plan.get("learner", state.legacy("learner"))
    return {
        "dataset": plan["dataset"], "dataset_id": did, "base_dataset": plan["base_dataset"],
        # planned by this checkout's meta-learner definition, or by an older one (planned again
        # by the next run that holds the dataset out)
        "learner": learner, "current_advisor": learner == advisor_fingerprint(),
        "recommended_config": plan["recommended"]["label"],
        "default_config": arms.label(TrainConfig(**plan["default_config"])),
        "finetune_config": arms.label(TrainConfig(**plan["finetune_config"])),
        "held_out": plan["fit"]["held_out"], "majority_class_acc": plan["majority_class_acc"],
        "arms": arms_view, "searches": searches,
        "gap_points": {"default": _gap(rec, arms_view["default"]["test_acc"]),
                       "finetune": _gap(rec, arms_view["finetune"]["test_acc"])},
        "complete": found == expected, "units_done": found, "units_expected": expected,
        "load_avg_1min": load, "same_time": same,
    }


def same_time_entry(state: StateDir, did: str, seeds: list[int], default_acc: dict[str, Any],
                    searches: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The same-time view of one dataset (`timematch` item 4), None before it is planned; its gap
    to the space default only once every seed of both is done; and the searches' speed-up against
    the same-time pick (`same_time_speed_ups`)."""
    planned = state.load(did, "plan-sametime")
    if planned is None:
        return None
    config = TrainConfig(**planned["recommended"]["config"])
    runs = [u for s in seeds if arms.unit_matches(u := state.load(did, f"sametime-s{s}"), config)]
    acc = curves.mean_std(r["test_acc"] for r in runs)
    return {"budget_s": planned["budget_s"], "config": planned["recommended"]["label"], "runs": runs,
            "test_acc": acc, "train_seconds": curves.mean_std(r["train_seconds"] for r in runs),
            "gap_points_default": (_gap(acc, default_acc)
                                   if len(runs) == len(seeds) and default_acc["n"] == len(seeds) else None),
            "speed_up": same_time_speed_ups(runs, searches or {})}


def same_time_speed_ups(runs: list[dict[str, Any]], searches: dict[str, Any]) -> dict[str, Any]:
    """Per sampler, the searches' speed-up against the same-time pick: the same trials (the search
    of seed s against the same-time run of seed s), the multiple now of that run's training time.
    The searches ran to 10x the (shorter) budget pick's time, so an unmatched one is reported as
    "> the multiple its trials covered" (often 3-6x here), never as "> 10x"."""
    by_seed = {r["seed"]: r for r in runs if r.get("train_seconds") and r.get("test_acc") is not None}
    out = {}
    for sampler, found in searches.items():
        speeds = [{"seed": s["seed"], **curves.speed_up(s["trials"], by_seed[s["seed"]]["train_seconds"],
                                                        by_seed[s["seed"]]["test_acc"], 0.0)}
                  for s in found["runs"] if s["seed"] in by_seed]
        out[sampler] = {"runs": speeds,
                        "median": curves.median_multiple(
                            [{**x, "lower": x["reached"]} for x in speeds], 0.0)}
    return out


def _legacy_tpe(search: dict[str, Any], rec_seconds: float) -> dict[str, Any]:
    """The same-time TPE arm of the original view, from a search's trials ended by 1x."""
    trials = [t for t in search["trials"] if t["cumulative_seconds"] <= rec_seconds + curves.EPS]
    evaluated = [t for t in trials if curves.evaluated(t)]
    best = max(evaluated, key=lambda t: (t["val_acc"], -t["number"]), default=None)
    spent = trials[-1]["cumulative_seconds"] if trials else 0.0
    return {"budget_seconds": round(rec_seconds, 3), "train_seconds": spent,
            "wall_seconds": round(sum(t.get("wall_seconds") or 0.0 for t in trials), 3),
            "overshoot_seconds": 0.0, "n_trials": len(trials),
            "stopped": "1x cut of the time-to-match search", "best": best, "trials": trials,
            "sampler": {"name": "tpe", "seed": search["seed"], "space": search["space"],
                        "warmup_random_trials": search["warmup_random_trials"]}}


def legacy_entry(plan: dict[str, Any], state: StateDir, seed: int,
                 published_csv: str | Path | None) -> dict[str, Any] | None:
    """The dataset in the original view's format (`report.compare`), None while a run is missing."""
    did = plan["dataset_id"]
    rec, default = state.load(did, f"recommended-s{seed}"), state.load(did, f"default-s{seed}")
    search = state.load(did, f"tpe-s{seed}")
    if rec is None or default is None or search is None:
        return None
    chosen = plan["recommended"]
    recommended = {**rec, "predicted_acc": chosen["predicted_acc"],
                   "predicted_acc_lo": chosen["acc_lo"], "predicted_acc_hi": chosen["acc_hi"],
                   "predicted_seconds": chosen["predicted_seconds"],
                   "time_is_estimate": chosen["time_is_estimate"], "rank": chosen["rank"]}
    published = [p.model_dump() for p in published_results(plan["base_dataset"], published_csv)]
    notes = list(plan["notes"])
    if not published:
        notes.append(f"no published MedMNIST v2 result for {plan['base_dataset']!r}")
    entry = {key: plan[key] for key in ("dataset", "dataset_id", "base_dataset", "splits",
                                        "meta_features", "majority_class_acc", "fit",
                                        "recommendation")}
    entry["learner"] = plan.get("learner", state.legacy("learner"))  # what `restore` needs
    entry.update(runs={"recommended": recommended, "default": default,
                       "tpe": _legacy_tpe(search, search["rec_seconds"])},
                 published=published, notes=notes, seed=seed)
    entry["comparison"] = compare(entry)
    return entry


def build_report(*, settings: dict[str, Any], state: StateDir, seeds: list[int],
                 search_seeds: list[int], samplers: list[str], published_csv: str | Path | None,
                 machine: dict[str, Any], store: str, skipped: list[str],
                 total_s: float) -> dict[str, Any]:
    """The whole report from the state dir (module doc)."""
    plans = state.plans()
    max_multiple = float(settings["max_multiple"])
    view_seed = (search_seeds or seeds)[0]
    entries = [match_entry(p, state, seeds=seeds, search_seeds=search_seeds, samplers=samplers,
                           max_multiple=max_multiple) for p in plans]
    legacy = [e for p in plans if (e := legacy_entry(p, state, view_seed, published_csv))]
    medians = {}
    for sampler in samplers:
        per_dataset = [e["searches"][sampler]["speed_up_median"] for e in entries
                       if e["searches"].get(sampler, {}).get("speed_up_median")]
        medians[sampler] = {"median": curves.median_multiple(per_dataset, max_multiple),
                            "n_datasets": len(per_dataset)}
    within = [e for e in entries if e["gap_points"]["default"] is not None]
    same_medians = {}
    for sampler in samplers:
        per_dataset = [m for e in entries if e["same_time"]
                       and (m := e["same_time"]["speed_up"].get(sampler, {}).get("median"))]
        same_medians[sampler] = {"median": curves.median_multiple(per_dataset, 0.0),
                                 "n_datasets": len(per_dataset)}
    return {
        "benchmark": "end-to-end, time to match",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "settings": {
            **settings, "seed": view_seed, "seeds": seeds, "search_seeds": search_seeds,
            "samplers": samplers, "multiples": list(curves.MULTIPLES),
            "default_config": arms.PRACTITIONER_DEFAULT_TEXT, "finetune_config": arms.PRACTITIONER_FINETUNE_TEXT,
            "tpe": {"space": settings["space"], "warmup_random_trials": settings["tpe_warmup"],
                    "max_trials": settings["max_trials"],
                    "stop": f"trials until their summed train_seconds reach {max_multiple:g}x the "
                            "recommended run's of the same seed"},
            "pairing": "search seed s against the recommended run of seed s (its training time "
                       "sets the budget, its test accuracy the target)",
            "time_measure": "train_seconds: the launcher's training-loop wall time (no model "
                            "building, no evaluation)",
            "published": CITATION, "state_dir": str(state.root)},
        "machine": machine, "store": store, "skipped_datasets": skipped,
        "datasets": legacy,
        "match": {
            "datasets": entries, "median_speed_up": medians,
            "rec_within_1_point_of_default": sum(e["gap_points"]["default"] >= -1.0 for e in within),
            "rec_within_1_point_of_finetune": sum(
                e["gap_points"]["finetune"] is not None and e["gap_points"]["finetune"] >= -1.0
                for e in entries),
            "n_compared": len(within),
            "same_time_within_1_point_of_default": sum(
                e["same_time"]["gap_points_default"] >= -1.0 for e in entries
                if e["same_time"] and e["same_time"]["gap_points_default"] is not None),
            "same_time_compared": sum(1 for e in entries if e["same_time"]
                                      and e["same_time"]["gap_points_default"] is not None),
            "same_time_median_speed_up": same_medians},
        "total_s": round(total_s, 2),
    }
