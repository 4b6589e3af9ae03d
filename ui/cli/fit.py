"""`metallmix fit [--store PATH] [--out DIR] [--json]`: fit the meta-learner on the run store and
save it as an artifact (what `recommend` loads): the accuracy model, the pairwise ranker with its
cross-validated blend weight, and the cost model."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from knowledge.errors import StoreError


def fit(
    store: Optional[str] = typer.Option(None, "--store", help="Run store: a file path or a database URL (postgresql://...); default $METALLMIX_STORE or <home>/runs.sqlite."),
    out: Optional[Path] = typer.Option(None, "--out", help="Artifact directory (default: "
                                       "<home>/artifacts/metalearner)."),
    cv_folds: int = typer.Option(4, "--cv-folds", min=0, help="Folds of grouped-by-dataset "
                                 "cross-validation to report (0: skip)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the XGBoost fits."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
) -> None:
    """Fit the meta-learner (accuracy + training-time models) on every stored run and save it."""
    from knowledge.meta_dataset.shipped import open_store  # lazy: CLI start-up (--help imports every command module)
    from knowledge.metalearner import artifact  # lazy: CLI start-up (--help imports every command module)
    from knowledge.metalearner.model import (  # lazy: CLI start-up (--help imports every command module)
        grouped_cv,
        training_rows,
    )

    console = Console(stderr=True)
    run_store = open_store(store)
    started = time.perf_counter()
    with console.status(f"reading {run_store.path} ..."):
        frame = run_store.to_frame()
    with console.status(f"fitting on {len(training_rows(frame))} runs ..."):
        learner = artifact.fit_frame(frame, seed=seed)
    fit_seconds = time.perf_counter() - started
    cv = None
    if cv_folds > 0:
        with console.status(f"grouped {cv_folds}-fold cross-validation ..."):
            try:
                cv = grouped_cv(frame, n_splits=cv_folds, seed=seed).as_dict()
            except StoreError as exc:  # e.g. a single dataset: nothing to hold out
                console.log(f"cross-validation skipped: {exc}")
    path = artifact.save(learner, out, cv=cv)
    summary = {
        "artifact": str(path),
        "store": str(run_store.path),
        "records": learner.n_records,
        "timed_records": learner.n_timed,
        "interval_margin_points": round(100 * learner.interval_margin, 2),
        "ranking_blend": learner.blend,
        "ranking_blend_cv_regret": learner.blend_cv,
        "fit_seconds": round(fit_seconds, 2),
        "total_seconds": round(time.perf_counter() - started, 2),
        "cv": cv,
    }
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        return
    table = Table(title="meta-learner fitted", show_header=False)
    table.add_row("records used", ", ".join(f"{k}: {v:,}" for k, v in learner.n_records.items()))
    table.add_row("timed runs (cost model)", f"{learner.n_timed:,}"
                  + ("" if learner.has_model("cost") else " (FLOPs-proxy prior only)"))
    cv_text = ", ".join(f"{w}: {r:.3f}" for w, r in learner.blend_cv.items())
    table.add_row("ranking blend (ranker weight)", f"{learner.blend:g}" + (
        f" (chosen by grouped CV; mean top-1 regret per weight: {cv_text})" if cv_text
        else " (no cross-validation: fewer than 3 datasets)"))
    if cv:
        table.add_row(f"CV by dataset ({cv['n_folds']} folds)",
                      f"MAE {cv['mae']:.2f} points (config-mean baseline {cv['baseline_mae']:.2f}); "
                      f"80 % interval coverage {100 * cv['coverage']:.0f} %; "
                      f"rank corr {cv['spearman']:.2f}; top-1 regret {cv['regret']:.2f} points")
    else:
        table.add_row("CV by dataset", "skipped")
    table.add_row("time", f"fit {fit_seconds:.1f} s, total {summary['total_seconds']:.1f} s")
    table.add_row("saved to", str(path))
    Console().print(table)
