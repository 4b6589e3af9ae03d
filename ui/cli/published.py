"""Importing published results into the run store (`metallmix runs import-medmnist-plus`)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Optional

import typer

from knowledge.errors import DatasetError


def import_medmnist_plus(
    results: Optional[Path] = typer.Option(
        None, "--results", help="MedMNIST+ results.csv (default: the shared data copy, if present).",
        dir_okay=False,
    ),
    class_counts: Optional[Path] = typer.Option(
        None, "--class-counts",
        help="medmnist_class_counts.csv (default: next to the medmnist_plus/ folder, if present).",
        dir_okay=False,
    ),
    store: Optional[str] = typer.Option(None, "--store", help="Run store: a file path or a database URL (postgresql://...); default $METALLMIX_STORE or <home>/runs.sqlite."),
    replace: bool = typer.Option(
        False, "--replace", help="Overwrite stored records whose content changed."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print the counts as JSON."),
) -> None:
    """Import the 1,440 published MedMNIST+ results (Doerrich et al. 2025) as run records."""
    from knowledge.meta_dataset import medmnist_plus as mp  # lazy: CLI start-up (--help imports every command module)
    from knowledge.runs.store import RunStore  # lazy: CLI start-up (--help imports every command module)

    if results is None:
        results = mp.default_results_csv()
        if not results.is_file():
            raise DatasetError(f"MedMNIST+ results file not found at the default {results}; "
                               "pass --results PATH")
    if class_counts is None:
        sibling = mp.default_class_counts_csv(results)
        class_counts = sibling if sibling.is_file() else None

    records = mp.load_medmnist_plus(results, class_counts)
    run_store = RunStore(store)
    added = run_store.add_many(records, replace=replace)
    per_scheme = dict(Counter(r.config.scheme for r in records))
    untrainable = mp.untrainable_counts(records)
    summary = {
        "source": mp.SOURCE_TAG,
        "results": str(results),
        "class_counts": str(class_counts) if class_counts else None,
        "store": str(run_store.path),
        "records": len(records),
        "added": added,
        "already_present": len(records) - added,
        "per_scheme": per_scheme,
        "untrainable": untrainable,
    }
    if json_out:
        typer.echo(json.dumps(summary, indent=2))
        return
    typer.echo(f"MedMNIST+ ({mp.CITATION_SHORT}): {len(records)} published records from {results}")
    typer.echo(f"  added {added}, already present {len(records) - added} -> {run_store.path}")
    typer.echo("  per scheme: " + ", ".join(f"{k} {v}" for k, v in per_scheme.items()))
    if class_counts is None:
        typer.echo("  no class-counts file: class-balance meta-features left missing")
    for model, n in untrainable.items():
        typer.echo(f"  note: {n} {model} records use a model with no timm weights; they inform "
                   "recommendations, but the launcher cannot train it")
