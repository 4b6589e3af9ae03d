"""Rebuild a time-to-match state dir from a report it produced (`summary.build_report`'s JSON).

The state dir held the only copy of the finished units (plans, arm runs, searches); a machine that
lost it (a new checkout) keeps the report, which holds every unit the report counts: each plan's
fit, recommendation and chosen config (`datasets`, the first search seed's view), each arm's runs
and each search's trials per seed (`match`), and the same-time pick with its runs. `restore` writes
them back as units, so the next `run_time_to_match` with the same settings skips them and plans,
trains and searches only what is missing. What the report does not keep is lost: a search's
trials beyond what its recommended run paired it with, the load at the end of a search, the
same-time plan's ranked list, and the plan's time (`planned_at` is the report's time, with the
report's order kept in its fraction of a second), and a dataset whose first seed's runs were not
all done (the report keeps no plan of it: it is skipped and planned again).

The plans' `evidence` is recomputed from `store` (the report does not keep it); each plan's fit must
have kept exactly the store's records outside its held-out bases, else StoreError: a plan restored
against other evidence would be kept while a rerun would make another.

    python -m eval.e2e.restore eval/results/e2e_match.json --state-dir eval/results/e2e_state \\
        --store ~/.local/share/metallmix/e2e_match_store.sqlite
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

from eval.e2e import arms
from eval.e2e.state import SETTINGS_FILE, StateDir, write_json_file
from eval.e2e.timematch import evidence_key
from knowledge.errors import ConfigError, StoreError
from knowledge.meta_dataset.shipped import open_store

SETTING_KEYS = ("budget", "exclude", "fit_seed", "limit_factor", "default_limit_s", "space",
                "tpe_warmup", "max_multiple", "max_trials", "download_weights", "store")
log = logging.getLogger(__name__)
PLAN_KEYS = ("dataset", "dataset_id", "base_dataset", "splits", "meta_features",
             "majority_class_acc", "fit", "recommendation")


def _plan(view: dict[str, Any], entry: dict[str, Any], planned_at: str, evidence: str,
          learner: str | None) -> dict[str, Any]:
    """A plan unit from a dataset's view in `datasets` and its block in `match`."""
    rec = view["runs"]["recommended"]
    published_note = f"no published MedMNIST v2 result for {view['base_dataset']!r}"
    meta = view["meta_features"]
    return {
        **{k: view[k] for k in PLAN_KEYS}, "planned_at": planned_at,
        "native_px": max(int(meta["height"]), int(meta["width"])),
        "recommended": {"label": rec["label"], "config": rec["config"],
                        "predicted_acc": rec["predicted_acc"], "acc_lo": rec["predicted_acc_lo"],
                        "acc_hi": rec["predicted_acc_hi"], "predicted_seconds": rec["predicted_seconds"],
                        "time_is_estimate": rec["time_is_estimate"], "rank": rec["rank"],
                        "time_limit_s": rec["time_limit_s"]},
        "default_config": entry["arms"]["default"]["runs"][0]["config"],
        "finetune_config": entry["arms"]["finetune"]["runs"][0]["config"],
        "notes": [n for n in view["notes"] if n != published_note],
        "evidence": evidence, "learner": learner, "restored_from_report": True}


def _search(run: dict[str, Any], sampler: str, dataset_id: str, settings: dict[str, Any]) -> dict[str, Any]:
    """A search unit from a search's per-seed block in `match` (its paired trials)."""
    trials = run["trials"]
    multiple = float(settings["max_multiple"])
    return {"sampler": sampler, "seed": run["seed"],
            "study": arms.study_tag(dataset_id, f"{sampler}-s{run['seed']}"),
            "space": settings["space"], "warmup_random_trials": settings["tpe_warmup"] if sampler == "tpe" else 0,
            "rec_seconds": run["rec_seconds"], "max_multiple": multiple,
            "budget_seconds": round(multiple * float(run["rec_seconds"]), 3),
            "train_seconds": trials[-1]["cumulative_seconds"] if trials else 0.0,
            "stopped": run["stopped"], "trials": trials, "restored_from_report": True}


def restore(report: dict[str, Any], state: StateDir, store: Any) -> dict[str, int]:
    """Write the report's units into `state` (module doc); counts of units written per kind.
    ConfigError when the state dir already holds a plan. Plans made by a meta-learner definition
    other than this checkout's are restored as such (the next run plans them again)."""
    if state.plans():
        raise ConfigError(f"the state dir {state.root} already holds planned datasets: restore "
                          "into an empty one")
    settings = {**{k: report["settings"][k] for k in SETTING_KEYS}, "store": str(store.path)}
    records = [r for r in store.query() if not arms.is_benchmark_run(r.provenance.study)]
    evidence = evidence_key(records)
    views = {v["dataset_id"]: v for v in report["datasets"]}
    stamp = report["created_at"][:19]
    counts = {"plan": 0, "arm": 0, "search": 0, "plan-sametime": 0, "sametime": 0, "skipped": 0}
    write_json_file(state.root / SETTINGS_FILE, settings)
    for i, entry in enumerate(report["match"]["datasets"]):
        did = entry["dataset_id"]
        view = views.get(did)
        if view is None:  # its first seed's runs were not all done: its plan is not in the report
            log.warning("%s: the report keeps no plan of it; not restored (planned again)", did)
            counts["skipped"] += 1
            continue
        held = set(view["fit"]["held_out"])
        kept = sum(r.base_dataset.lower() not in held for r in records)
        if kept != view["fit"]["n_records"]:
            raise StoreError(f"{did}: its fit kept {view['fit']['n_records']} records, the store "
                             f"{store.path} has {kept} outside {sorted(held)}: other evidence")
        learner = view.get("learner") or report["settings"].get("learner")  # older reports: settings
        state.save(did, "plan", _plan(view, entry, f"{stamp}.{i:03d}+00:00", evidence, learner))
        counts["plan"] += 1
        for arm, block in entry["arms"].items():
            for run in block["runs"]:
                state.save(did, f"{arm}-s{run['seed']}", run)
                counts["arm"] += 1
        for sampler, block in entry["searches"].items():
            for run in block["runs"]:
                state.save(did, f"{sampler}-s{run['seed']}", _search(run, sampler, did, settings))
                counts["search"] += 1
        same = entry.get("same_time")
        if same and same["runs"]:
            first = same["runs"][0]
            state.save(did, "plan-sametime", {
                "budget_s": same["budget_s"], "evidence": evidence, "learner": learner, "top": [],
                "recommended": {"label": same["config"], "config": first["config"],
                                "time_limit_s": first["time_limit_s"]},
                "restored_from_report": True})
            counts["plan-sametime"] += 1
            for run in same["runs"]:
                state.save(did, f"sametime-s{run['seed']}", run)
                counts["sametime"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.e2e.restore", description=__doc__.split("\n")[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--store", required=True, help="the run store the report's plans were made from")
    args = parser.parse_args(argv)
    report = json.loads(args.report.read_text(encoding="utf-8"))
    counts = restore(report, StateDir(args.state_dir), open_store(args.store))
    print(", ".join(f"{n} {kind}" for kind, n in counts.items()) + f" unit(s) restored into {args.state_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
