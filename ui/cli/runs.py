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
    user = "user"


class FormatOpt(str, Enum):
    csv = "csv"
    parquet = "parquet"


STORE = typer.Option(None, "--store", help="Run store: a file path or a database URL (postgresql://...); default $METALLMIX_STORE or <home>/runs.sqlite.")
SOURCE = typer.Option(None, "--source", help="Only own runs, published results or your imported runs (user).")
DATASET = typer.Option(
    None, "--dataset", help="A base dataset (pneumoniamnist) or, with ':', a dataset id (medmnist:x?n=500)."
)
STATUS = typer.Option(None, "--status", help="Run status: ok, failed, diverged, out-of-memory, ...")


def _open(store: Optional[str]) -> Any:
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
    store: Optional[str] = STORE,
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
    store: Optional[str] = STORE,
) -> None:
    """Write runs to a CSV or Parquet file (one flat row per run), atomically."""
    runs = _open(store)
    n = runs.export(path, format=format.value if format else None, **_filters(source, dataset, status))
    typer.echo(f"exported {n} runs to {path}")


class ValueIsOpt(str, Enum):
    test_acc = "test_acc"
    val_acc = "val_acc"
    test_error = "test_error"
    val_error = "val_error"


@app.command("import")
def import_(
    path: Optional[Path] = typer.Argument(
        None, help="A CSV or Parquet file written by `runs export`, or a CSV of your own runs "
                   "(docs/RUN_IMPORT.md)."),
    replace: bool = typer.Option(False, "--replace", help="Overwrite stored runs with the same run_id."),
    optuna_storage: Optional[str] = typer.Option(
        None, "--optuna-storage", help="Import an Optuna study instead of a file: its storage URL "
                                       "(sqlite:///study.db) or SQLite file."),
    study: Optional[str] = typer.Option(None, "--study", help="The study's name (default: the only one)."),
    dataset: Optional[str] = typer.Option(
        None, "--dataset", help="The study's dataset: a dataset spec (measured) or traits JSON as for "
                                "`recommend --traits`."),
    dataset_name: Optional[str] = typer.Option(
        None, "--dataset-name", help="A name for a --dataset given as traits (default: the study's)."),
    mapping: Optional[list[str]] = typer.Option(
        None, "--map", help="THEIR_PARAM=OUR_FIELD, e.g. learning_rate=lr (repeatable; a param "
                            "named like our field maps by itself)."),
    fixed: Optional[list[str]] = typer.Option(
        None, "--fixed", help="OUR_FIELD=VALUE for a field the study did not search, e.g. "
                              "model=resnet18 (repeatable)."),
    defaults_for_missing: bool = typer.Option(
        False, "--defaults-for-missing", help="Fill fields neither mapped nor fixed with the "
                                              "TrainConfig defaults (not model)."),
    value_is: Optional[ValueIsOpt] = typer.Option(
        None, "--value-is", help="What the objective value (or a CSV's accuracy column) is "
                                 "(default test_acc; an error rate is 1 - accuracy)."),
    objective: Optional[int] = typer.Option(
        None, "--objective", min=0, help="Of a multi-objective study: the accuracy's index (from 0)."),
    store: Optional[str] = STORE,
) -> None:
    """Add runs: a `runs export` file as before, a CSV of your own runs, or an Optuna study
    (--optuna-storage); every run is checked first, a bad one imports nothing. Yours count as
    source `user`."""
    from knowledge.errors import StoreError  # lazy: CLI start-up (--help imports every command module)
    from knowledge.runs import (  # lazy: CLI start-up (--help imports every command module)
        import_csv,
        import_optuna,
        imports,
    )

    given = [name for name, value in (("--study", study), ("--dataset", dataset),
                                      ("--dataset-name", dataset_name), ("--map", mapping),
                                      ("--fixed", fixed), ("--defaults-for-missing", defaults_for_missing),
                                      ("--objective", objective)) if value]
    if optuna_storage is None:
        if path is None:
            raise StoreError("give a PATH to import, or --optuna-storage URL for an Optuna study")
        if given:
            raise StoreError(f"{given[0]} goes with --optuna-storage (an Optuna study), not a file")
        runs = _open(store)
        added, kind = import_csv.import_path(runs, path, replace=replace,
                                          value_is=value_is.value if value_is else None)
        yours = " of your own" if kind == "user" else ""
        typer.echo(f"added {added} runs{yours} from {path} (store now holds {len(runs)})")
        return
    if path is not None:
        raise StoreError("give either a PATH or --optuna-storage, not both")
    if not dataset:
        raise StoreError("--optuna-storage needs --dataset: the dataset spec the study trained on, or "
                         "its traits as JSON")
    loaded = import_optuna.load_study(optuna_storage, study)
    data = imports.user_dataset(dataset, name=dataset_name or loaded.study_name)
    result = import_optuna.records_from_study(
        loaded, data, imports.parse_pairs(mapping, "--map"), imports.parse_fixed(fixed),
        value_is=value_is.value if value_is else None, objective=objective,
        defaults_for_missing=defaults_for_missing)
    runs = _open(store)
    try:
        added = runs.add_many(result.records, replace=replace)
    except StoreError as exc:
        raise StoreError(f"study {result.study!r}: {exc}; nothing was imported") from None
    typer.echo(f"added {added} runs of your own from Optuna study {result.study!r} on {data.dataset_id} "
               f"({result.text()}); the store now holds {len(runs)}")


@app.command("rebuild")
def rebuild(
    out: Optional[Path] = typer.Option(
        None, "--out", help="Meta-dataset file to write (default: the one shipped in knowledge/data/)."
    ),
    results: Optional[Path] = typer.Option(
        None, "--results", help="MedMNIST+ results.csv (default: ../shared/data, else the shipped copy)."
    ),
    store: Optional[str] = STORE,
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
