"""The MedMNIST v2 published results a held-out dataset is compared with.

`knowledge/data/published/medmnist_v2_benchmark.csv` (a copy of `../shared/data/`, see the
SOURCE.md beside it) holds test ACC and AUC of ResNet-18 / ResNet-50 at 28 and 224 px and of three
AutoML systems on the twelve 2D MedMNIST datasets (Yang et al., MedMNIST v2, Sci. Data 10, 41,
2023; table from medmnist.com). The ResNet rows are trained 100 epochs on a GPU; the AutoML rows
are what auto-sklearn, AutoKeras and Google AutoML Vision found with their own search budgets.
Neither is a like-for-like comparison with a few minutes of CPU training: they are the reference
points the paper-style table reports beside it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from pydantic import BaseModel

from knowledge import paths
from knowledge.errors import DatasetError

DEFAULT_CSV = paths.PACKAGE_DATA / "published" / "medmnist_v2_benchmark.csv"
CITATION = ("Yang et al., MedMNIST v2, Sci. Data 10, 41 (2023); benchmark table of medmnist.com "
            "(github.com/MedMNIST/medmnist.github.io, v2.html)")
COLUMNS = ("dataset", "method", "AUC", "ACC")
RESNET_NOTE = "trained 100 epochs on a GPU (MedMNIST v2 paper)"
AUTOML_NOTE = "the AutoML system's own search budget (MedMNIST v2 paper)"


class PublishedResult(BaseModel):
    """One published row: a method's test accuracy and AUC (fractions) on one dataset."""

    method: str
    acc: float
    auc: float | None = None
    note: str


def read_table(csv: str | Path | None = None) -> pd.DataFrame:
    """The whole table; DatasetError (naming the file) when it is missing or malformed."""
    path = Path(csv) if csv is not None else DEFAULT_CSV
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DatasetError(f"cannot read the published results table: {exc}: {path}") from None
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise DatasetError(f"published results table lacks column(s) {', '.join(missing)}: {path}")
    return table


def published_results(base_dataset: str, csv: str | Path | None = None) -> list[PublishedResult]:
    """The rows of `base_dataset` (case-insensitive, e.g. 'breastmnist'), in table order; [] when
    the table has none (a dataset that is not MedMNIST)."""
    table = read_table(csv)
    rows = table[table["dataset"].astype(str).str.lower() == base_dataset.lower()]
    out = []
    for row in rows.itertuples(index=False):
        method = str(row.method)
        auc = pd.to_numeric(row.AUC, errors="coerce")
        out.append(PublishedResult(
            method=method, acc=float(row.ACC), auc=None if pd.isna(auc) else float(auc),
            note=RESNET_NOTE if method.lower().startswith("resnet") else AUTOML_NOTE))
    return out
