"""The leave-one-dataset-out benchmark's aggregates and presentation (`eval.lodo`): splits,
per-method summaries, timing, and the markdown table."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def splits(tasks: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Task subsets reported: all, medical, non-medical, and one per source."""
    out = {
        "all": list(tasks),
        "medical": [t for t in tasks if t["medical"]],
        "non-medical": [t for t in tasks if not t["medical"]],
    }
    for source in sorted({t["source"] for t in tasks}):
        out[f"source={source}"] = [t for t in tasks if t["source"] == source]
    return out


STATS: tuple[str, ...] = ("regret", "regret_top5", "regret_points", "rank", "rank_top5")


def summarise(tasks: Sequence[dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
    """Mean and median over tasks of every method's scores, per split (module doc)."""
    out: dict[str, Any] = {}
    for split, subset in splits(tasks).items():
        entry: dict[str, Any] = {"n_tasks": len(subset), "methods": {}}
        for name in names:
            stats: dict[str, Any] = {}
            for stat in STATS:
                values = [t["results"][name][stat] for t in subset
                          if name in t["results"] and stat in t["results"][name]]
                if values:
                    stats[stat] = {"mean": float(np.mean(values)),
                                   "median": float(np.median(values)), "n": len(values)}
            if stats:
                entry["methods"][name] = stats
        out[split] = entry
    return out


def timing_summary(tasks: Sequence[dict[str, Any]], folds: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Mean / median / max seconds per task of each timed step, and of the fits (per fold)."""
    out: dict[str, Any] = {}
    for step in ("predict_s", "rank_s", "retrieve_s"):
        values = [t["time"][step] for t in tasks if step in t["time"]]
        if values:
            out[step] = {"mean": float(np.mean(values)), "median": float(np.median(values)),
                         "max": float(np.max(values))}
    fits = [f["fit_s"] for f in folds]
    if fits:
        out["fit_s"] = {"mean": float(np.mean(fits)), "median": float(np.median(fits)),
                        "max": float(np.max(fits))}
    return out


# --- presentation --------------------------------------------------------------------------------

def table_rows(report: dict[str, Any], split: str) -> list[list[str]]:
    """Rows (method, regret@1 mean/median, top-5 regret mean/median, points, rank mean/median)."""
    entry = report["summary"].get(split, {"methods": {}})
    rows = []
    for name in report["methods"]:
        stats = entry["methods"].get(name)
        if not stats:
            continue

        def cell(stat: str, agg: str, fmt: str) -> str:
            return format(stats[stat][agg], fmt) if stat in stats else "–"

        rows.append([name, cell("regret", "mean", ".3f"), cell("regret", "median", ".3f"),
                     cell("regret_top5", "mean", ".3f"), cell("regret_top5", "median", ".3f"),
                     cell("regret_points", "mean", ".2f"), cell("rank", "mean", ".1f"),
                     cell("rank", "median", ".1f")])
    return rows


HEADERS = ["method", "regret@1 mean", "regret@1 median", "best-of-5 regret mean",
           "best-of-5 regret median", "regret@1 (acc. points) mean", "rank mean", "rank median"]


def to_markdown(report: dict[str, Any]) -> str:
    """The results as a Markdown fragment (one table per non-empty split, then the timing)."""
    lines = []
    rec = report["records"]
    by_source = ", ".join(f"{k}: {v:,}" for k, v in rec["by_source"].items())
    lines.append(f"Records: {rec['usable']:,} usable ({by_source}); {len(report['folds'])} folds "
                 f"(held-out base datasets), {len(report['tasks'])} tasks; TPE and random averaged "
                 f"over {report['settings']['seeds']} seeds / exactly. Regret normalised to [0, 1] "
                 f"per task by its best and worst recorded config; rank among its recorded configs.")
    blends = [f["blend"] for f in report["folds"] if "blend" in f]
    if blends:
        counts = ", ".join(f"{w:g} ({blends.count(w)} folds)" for w in sorted(set(blends)))
        lines.append(f"Meta-learner ranking blend (ranker weight, chosen by grouped CV on each "
                     f"fold's training datasets): {counts}.")
    for split, entry in report["summary"].items():
        if not entry["n_tasks"]:
            continue
        lines += ["", f"**{split}** ({entry['n_tasks']} tasks)", "",
                  "| " + " | ".join(HEADERS) + " |",
                  "|" + "|".join(["---"] + ["---:"] * (len(HEADERS) - 1)) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in table_rows(report, split)]
    timing = report["timing"]
    if timing:
        parts = []
        labels = {"predict_s": "predict + argmax over the task's configs",
                  "rank_s": "full `rank()` over the default candidates",
                  "retrieve_s": "nearest-dataset retrieval", "fit_s": "meta-learner fit per fold"}
        for step, label in labels.items():
            if step in timing:
                t = timing[step]
                parts.append(f"{label}: median {1000 * t['median']:.1f} ms "
                             f"(max {1000 * t['max']:.1f} ms)" if step != "fit_s" else
                             f"{label}: median {t['median']:.1f} s")
        machine = report["machine"]
        lines += ["", f"Time to a recommendation ({machine['cpu_count']} CPUs, "
                      f"{machine['platform']}): " + "; ".join(parts) + "."]
    return "\n".join(lines) + "\n"
