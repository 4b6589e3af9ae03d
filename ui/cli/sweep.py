"""`metallmix sweep SOURCE [SOURCE ...] --trials N`: random search / TPE on datasets (resumable).

Many machines share one sweep when each runs the same command with the same database URLs:

    metallmix sweep digits --trials 200 --storage postgresql+psycopg://u:pw@db/sweeps \
        --store postgresql+psycopg://u:pw@db/runs

(see docs/MULTI_MACHINE.md).
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Optional

import typer


class SamplerOpt(str, Enum):
    random = "random"
    tpe = "tpe"


def sweep(
    sources: list[str] = typer.Argument(
        ..., help="Datasets: a file (x.npz), a folder, or a named source (digits, "
                  "medmnist:breastmnist?n=200&seed=0)."),
    trials: int = typer.Option(..., "--trials", "-n", help="Finished trials per source (resumes up to N)."),
    sampler: SamplerOpt = typer.Option(SamplerOpt.tpe, "--sampler", help="random search or TPE."),
    warmup: Optional[int] = typer.Option(
        None, "--warmup", help="TPE only: the first N trials of each source are random (default 10)."),
    workers: int = typer.Option(1, "--workers", "-w", help="Parallel training processes (on this machine)."),
    trial_budget: Optional[float] = typer.Option(
        300.0, "--trial-budget", help="Seconds a trial may train before it stops (timeout)."),
    storage: Optional[str] = typer.Option(
        None, "--storage", help="Optuna storage: a SQLite file or a database URL (postgresql+psycopg://user:pw@host/db: "
             "every machine that runs the same command shares the study and its --trials; "
             "default <home>/sweeps.sqlite)."),
    store: Optional[str] = typer.Option(
        None, "--store", help="Run store: a file path or a database URL (postgresql://...); default $METALLMIX_STORE or <home>/runs.sqlite."),
    seed: int = typer.Option(0, "--seed", help="Seed of samplers and training."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar on stderr."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Train sampled configs on each dataset and record every run (stop with Ctrl-C; the same
    command resumes)."""
    from knowledge.sweeps import run_sweep  # lazy: pulls in optuna

    try:
        report = run_sweep(
            sources, trials=trials, sampler=sampler.value, warmup=warmup, workers=workers,
            storage=storage, store_path=store, trial_time_budget_s=trial_budget, seed=seed,
            progress=progress,
        )
    except KeyboardInterrupt:
        typer.echo("interrupted: run the same command again to resume the sweep", err=True)
        raise typer.Abort() from None
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
    else:
        _print_table(report)


def _print_table(report: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"sweep ({report.sampler}, {report.trials} trials per source)")
    for col in ("source", "finished", "ok", "failed", "best val acc", "best config", "seconds"):
        table.add_column(col, justify="right" if col in {"finished", "ok", "failed", "seconds"} else "left")
    for s in report.sources:
        cfg = s.best_config or {}
        best_cfg = (f"{cfg['model']} {'pt' if cfg['pretrained'] else 'scratch'} {cfg['resolution']}px "
                    f"{cfg['optimizer']} lr={cfg['lr']:.2g} bs={cfg['batch_size']} ep={cfg['epochs']}"
                    if cfg else "-")
        acc = "-" if s.best_val_acc is None else f"{s.best_val_acc:.4f}"
        table.add_row(s.source, str(s.finished), str(s.ok), str(s.failed), acc, best_cfg,
                      f"{s.seconds:.0f}")
    console = Console()
    console.print(table)
    console.print(f"storage: {report.storage}\nrun store: {report.store}", highlight=False)
