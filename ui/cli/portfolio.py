"""`metallmix portfolio [SOURCE ...]`: train the CPU portfolio on every dataset lacking it (resumable)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def portfolio(
    sources: Optional[list[str]] = typer.Argument(
        None, help="Datasets (default: every variant of knowledge.sweeps.plan.DEFAULT_PLAN)."),
    configs: Optional[Path] = typer.Option(
        None, "--configs", help="Portfolio JSON (default: the shipped knowledge/data/cpu_portfolio.json)."),
    trial_budget: Optional[float] = typer.Option(
        120.0, "--trial-budget", help="Seconds a run may train before it stops (timeout)."),
    threads: int = typer.Option(1, "--threads", help="CPU threads per run."),
    store: Optional[str] = typer.Option(
        None, "--store", help="Run store: a file path or a database URL (postgresql://...); default $METALLMIX_STORE or <home>/runs.sqlite."),
    seed: int = typer.Option(0, "--seed", help="Training seed."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr."),
    only: Optional[list[int]] = typer.Option(
        None, "--only", help="Only the portfolio config with this index (repeatable)."),
    redo_timeouts: bool = typer.Option(
        False, "--redo-timeouts", help="Also train again the pairs recorded only as timeouts shorter "
        "than --trial-budget (a longer budget than theirs: a time limit censors long configs)."),
) -> None:
    """Train each portfolio config on each dataset that has no record of it yet, storing every run
    (Ctrl-C stops; the same command resumes)."""
    from knowledge.sweeps.plan import DEFAULT_PLAN  # lazy: pulls in optuna
    from knowledge.sweeps.portfolio import load_portfolio, run_portfolio  # lazy: pulls in optuna

    chosen = list(sources) if sources else list(DEFAULT_PLAN)
    report = run_portfolio(chosen, load_portfolio(configs), store_path=store,
                           time_budget_s=trial_budget, num_threads=threads, seed=seed,
                           progress=progress, only=only, redo_timeouts=redo_timeouts)
    statuses = ", ".join(f"{k} {v}" for k, v in sorted(report.statuses.items())) or "none"
    typer.echo(f"portfolio: trained {report.trained} runs ({statuses}); "
               f"{report.skipped} (dataset, config) pairs were already recorded")
