"""`metallmix analyze DATASET`: the dataset's meta-features, as a table or as JSON."""

from __future__ import annotations

import json
from typing import Any

import typer

DATASET_HELP = (
    "A .npz file (MedMNIST layout), a folder of class subfolders, or a named source "
    "(medmnist:<flag>, fashion-mnist, mnist-5k, digits); add ?n=500&imbalance=0.2&seed=0 for a variant."
)


def analyze(
    dataset: str = typer.Argument(..., metavar="DATASET", help=DATASET_HELP),
    modality: str | None = typer.Option(
        None, "--modality", "-m", help="Imaging modality, overriding the dataset's own (e.g. x-ray, ct)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
) -> None:
    """Compute a dataset's meta-features (the meta-learner's input) on its training split."""
    from knowledge.datasets import load_dataset  # lazy: CLI start-up (--help imports every command module)

    ds = load_dataset(dataset, modality=modality)
    mf = ds.meta_features()
    report: dict[str, Any] = {
        **mf.model_dump(),
        "dataset_id": ds.id,
        "base": ds.base,
        "variant": ds.variant,
        "medical": ds.medical,
        "n_val": len(ds.val) if ds.val is not None else 0,
        "n_test": len(ds.test) if ds.test is not None else 0,
    }
    if as_json:
        typer.echo(json.dumps(report))
        return
    _print_table(report, ds.class_names)


def _print_table(report: dict[str, Any], class_names: list[str] | None) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from knowledge.metafeatures import (  # lazy: CLI start-up (--help imports every command module)
        FEATURE_LABELS,
        MetaFeatures,
    )

    title = escape(report["dataset_id"])
    table = Table(title=f"Meta-features of {title}", title_justify="left")
    table.add_column("feature", style="bold")
    table.add_column("value", justify="right")
    table.add_column("meaning", style="dim")
    for name in MetaFeatures.model_fields:
        value = report[name]
        if value is None:
            shown = "[yellow]unknown[/]" + (" (pass --modality)" if name == "modality" else "")
        elif isinstance(value, float):
            shown = f"{value:,.4f}".rstrip("0").rstrip(".")
        elif isinstance(value, int):
            shown = f"{value:,}"
        else:
            shown = str(value)
        table.add_row(name, shown, FEATURE_LABELS.get(name, ""))
    console = Console()
    console.print(table)
    splits = f"train {report['n_instances']:,} · val {report['n_val']:,} · test {report['n_test']:,}"
    console.print(f"base [bold]{escape(report['base'])}[/]"
                  + (f", variant [bold]{escape(report['variant'])}[/]" if report["variant"] else "")
                  + f", {'medical' if report['medical'] else 'non-medical'}; {splits}")
    if class_names:
        console.print(f"classes ({len(class_names):,}): {class_names_text(class_names)}", markup=False)


def class_names_text(names: list[str], limit: int = 12) -> str:
    """The class names on one line, separated by " | " so that a name with a comma in it
    ('normal, benign') stays one name; the first `limit`, then how many more."""
    shown = " | ".join(str(name) for name in names[:limit])
    return shown + (f" | … ({len(names) - limit:,} more)" if len(names) > limit else "")
