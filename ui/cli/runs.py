"""`metallmix runs list | export | import`: look at, save and load the run store."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any, Optional

import typer

app = typer.Typer(help="The run store: list, export and import run records.", no_args_is_help=True)


class SourceOpt(str, Enum):
    own = "own"
    published = "published"


class FormatOpt(str, Enum):
    csv = "csv"
    parquet = "parquet"


STORE = typer.Option(
    None, "--store", help="Run store file (default: $METALLMIX_STORE or <home>/runs.sqlite)."
)
SOURCE = typer.Option(None, "--source", help="Only own runs or only published results.")
DATASET = typer.Option(
    None, "--dataset", help="A base dataset (pneumoniamnist) or, with ':', a dataset id (medmnist:x?n=500)."
)
STATUS = typer.Option(None, "--status", help="Run status: ok, failed, diverged, out-of-memory, ...")


def _open(store: Optional[Path]) -> Any:
    from knowledge.meta_dataset.shipped import open_store  # lazy: CLI start-up (--help imports every command module)

    return open_store(store)


def _filters(source: Optional[SourceOpt], dataset: Optional[str], status: Optional[str]) -> dict:
    filters: dict[str, str] = {}
    if source is not None:
        filters["source"] = source.value
    if dataset:
        filters["dataset_id" if ":" in dataset else "base_dataset"] = dataset
    if status:
        from knowledge.runs.record import RUN_STATUSES  # lazy: CLI start-up (--help imports every command module)

        if status not in RUN_STATUSES:
            raise typer.BadParameter(f"{status!r}; choose one of {', '.join(RUN_STATUSES)}",
                                     param_hint="--status")
        filters["status"] = status
    return filters


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


@app.command("list")
def list_runs(
    summary: bool = typer.Option(False, "--summary", help="Counts by source, status, dataset and model."),
    source: Optional[SourceOpt] = SOURCE,
    dataset: Optional[str] = DATASET,
    status: Optional[str] = STATUS,
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Show at most N runs."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    store: Optional[Path] = STORE,
) -> None:
    """List the runs in the store (or --summary counts)."""
    from rich.console import Console
    from rich.table import Table

    runs = _open(store)
    filters = _filters(source, dataset, status)
    console = Console()
    if summary:
        counts = runs.summary(**filters)
        if as_json:
            typer.echo(json.dumps(counts, indent=2))
            return
        console.print(f"{counts['total']} runs in {runs.path}")
        for key, title in [("source", "source"), ("status", "status"),
                           ("base_dataset", "base dataset"), ("model", "model")]:
            table = Table(title=f"by {title}", title_justify="left")
            table.add_column(title)
            table.add_column("runs", justify="right")
            for name, n in counts[key].items():
                table.add_row(str(name), str(n))
            console.print(table)
        return
    records = runs.query(**filters, limit=limit)
    if as_json:
        typer.echo(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
        return
    total = runs.count(**filters)
    if not records:
        console.print(f"no runs match in {runs.path}")
        return
    table = Table()
    for name, justify in [("run", "left"), ("dataset", "left"), ("model", "left"), ("scheme", "left"),
                          ("res", "right"), ("test acc", "right"), ("status", "left"),
                          ("source", "left")]:
        table.add_column(name, justify=justify, no_wrap=name == "run")
    for r in records:
        table.add_row(r.run_id[:8], r.dataset_id, r.config.model, r.config.scheme,
                      str(r.config.resolution), _fmt(r.outcome.test_acc), r.status, r.provenance.source)
    console.print(table)
    console.print(f"{len(records)} of {total} runs shown ({runs.path})")


@app.command("export")
def export(
    path: Path = typer.Argument(..., help="Output file: .csv or .parquet"),
    format: Optional[FormatOpt] = typer.Option(None, "--format", help="Overrides the suffix."),
    source: Optional[SourceOpt] = SOURCE,
    dataset: Optional[str] = DATASET,
    status: Optional[str] = STATUS,
    store: Optional[Path] = STORE,
) -> None:
    """Write runs to a CSV or Parquet file (one flat row per run), atomically."""
    runs = _open(store)
    n = runs.export(path, format=format.value if format else None, **_filters(source, dataset, status))
    typer.echo(f"exported {n} runs to {path}")


@app.command("import")
def import_(
    path: Path = typer.Argument(..., help="A CSV or Parquet file written by `runs export`."),
    replace: bool = typer.Option(False, "--replace", help="Overwrite stored runs with the same run_id."),
    store: Optional[Path] = STORE,
) -> None:
    """Add the runs of a CSV or Parquet file; every row is checked first, a bad one imports nothing."""
    runs = _open(store)
    added = runs.import_file(path, replace=replace)
    typer.echo(f"added {added} runs from {path} (store now holds {len(runs)})")


@app.command("rebuild")
def rebuild(
    out: Optional[Path] = typer.Option(
        None, "--out", help="Meta-dataset file to write (default: the one shipped in knowledge/data/)."
    ),
    results: Optional[Path] = typer.Option(
        None, "--results", help="MedMNIST+ results.csv (default: ../shared/data, else the shipped copy)."
    ),
    store: Optional[Path] = STORE,
) -> None:
    """Regenerate the shipped meta-dataset: the published MedMNIST+ table plus the store's own runs."""
    from knowledge.meta_dataset.shipped import SHIPPED  # lazy: CLI start-up (--help imports every command module)
    from knowledge.meta_dataset.shipped import (  # lazy: CLI start-up (--help imports every command module)
        rebuild as do_rebuild,
    )

    target = out or SHIPPED
    counts = do_rebuild(_open(store), out=target, results_csv=results)
    typer.echo(
        f"wrote {counts['total']} records ({counts['published']} published, {counts['own']} own) to {target}"
    )
