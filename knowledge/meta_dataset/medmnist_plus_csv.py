"""Reading and checking the MedMNIST+ tables (`knowledge.meta_dataset.medmnist_plus`): the published
results (`read_results`, one `PublishedResult` a row) and the train-split class counts
(`read_train_class_counts`); a bad file, row or cell raises DatasetError naming file, line and
column."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from knowledge.datasets.medmnist_info import MEDMNIST_2D
from knowledge.errors import DatasetError
from knowledge.search_space import SCHEMES

# csv model label -> MODELS key (timm name); see the docstring of `medmnist_plus` for the two
# inexact ones.
MODEL_NAMES: dict[str, str] = {
    "VGG16": "vgg16",
    "AlexNet": "alexnet",
    "ResNet-18": "resnet18",
    "DenseNet-121": "densenet121",
    "EfficientNet-B4": "efficientnet_b4",
    "ViT-B/16": "vit_base_patch16_224",
    "CLIP ViT-B/16": "vit_base_patch16_clip_224",
    "EVA-02 ViT-B/16": "eva02_base_patch16_clip_224",
    "DINO ViT-B/16": "vit_base_patch16_224.dino",
    "SAM ViT-B/16": "samvit_base_patch16.sa1b",
}
RESOLUTIONS: tuple[int, ...] = (28, 64, 128, 224)

RESULT_COLUMNS = ("dataset", "scheme", "model", "resolution", "acc_mean", "acc_std", "auc_mean",
                  "auc_std")
COUNT_COLUMNS = ("dataset", "split", "class_index", "count", "status")


@dataclass(frozen=True)
class PublishedResult:
    """One row of results.csv; percentages as printed, `None` where the table has no value."""

    dataset: str
    scheme: str
    model: str  # the csv's label, e.g. "ViT-B/16"
    resolution: int
    acc_mean: float
    acc_std: float | None
    auc_mean: float | None
    auc_std: float | None
    line: int


def _rows(path: Path, required: Sequence[str], what: str) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, row) of a csv with a header; DatasetError if unreadable or a column is missing."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{what} not found: {path}")
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            missing = [c for c in required if c not in header]
            if missing:
                raise DatasetError(
                    f"{path}: missing column(s) {', '.join(missing)}; "
                    f"expected {', '.join(required)}"
                )
            for row in reader:
                cells = [v for k, v in row.items() if k is not None]
                extra = row.get(None) or []  # type: ignore[call-overload]
                if not extra and not any((v or "").strip() for v in cells):
                    continue  # blank line
                n_cells = len(extra) + sum(v is not None for v in cells)
                if n_cells != len(header):
                    raise DatasetError(f"{path}: line {reader.line_num}: {n_cells} cells, but the "
                                       f"header has {len(header)} (a stray comma?)")
                yield reader.line_num, row
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DatasetError(f"{path}: cannot read {what}: {exc}") from None


def _cell_error(path: Path, line: int, column: str, problem: str) -> DatasetError:
    return DatasetError(f"{path}: line {line}, column '{column}': {problem}")


def _number(path: Path, line: int, row: dict[str, str], column: str, *, required: bool,
            low: float = 0.0, high: float = math.inf) -> float | None:
    text = (row.get(column) or "").strip()
    if not text:
        if required:
            raise _cell_error(path, line, column, "missing value")
        return None
    try:
        value = float(text)
    except ValueError:
        raise _cell_error(path, line, column, f"{text!r} is not a number") from None
    if not (low <= value <= high):
        raise _cell_error(path, line, column, f"{text} is outside [{low:g}, {high:g}]")
    return value


def read_results(results_csv: Path) -> list[PublishedResult]:
    """Parse and check results.csv; DatasetError naming file, line and column on a bad cell."""
    path = Path(results_csv)
    out: list[PublishedResult] = []
    seen: dict[tuple[str, str, str, int], int] = {}
    for line, row in _rows(path, RESULT_COLUMNS, "MedMNIST+ results file"):
        dataset = (row["dataset"] or "").strip().lower()
        if dataset not in MEDMNIST_2D:
            raise _cell_error(path, line, "dataset",
                              f"unknown dataset {row['dataset']!r}; known: {', '.join(MEDMNIST_2D)}")
        scheme = (row["scheme"] or "").strip()
        if scheme not in SCHEMES:
            raise _cell_error(path, line, "scheme",
                              f"unknown scheme {scheme!r}; known: {', '.join(SCHEMES)}")
        model = (row["model"] or "").strip()
        if model not in MODEL_NAMES:
            raise _cell_error(path, line, "model",
                              f"unknown model {model!r}; known: {', '.join(MODEL_NAMES)}")
        res_text = (row["resolution"] or "").strip()
        if res_text not in {str(r) for r in RESOLUTIONS}:
            raise _cell_error(path, line, "resolution",
                              f"{res_text!r} is not one of {', '.join(map(str, RESOLUTIONS))}")
        result = PublishedResult(
            dataset=dataset,
            scheme=scheme,
            model=model,
            resolution=int(res_text),
            acc_mean=_number(path, line, row, "acc_mean", required=True, high=100.0),
            acc_std=_number(path, line, row, "acc_std", required=False, high=100.0),
            auc_mean=_number(path, line, row, "auc_mean", required=False, high=100.0),
            auc_std=_number(path, line, row, "auc_std", required=False, high=100.0),
            line=line,
        )
        key = (dataset, scheme, model, result.resolution)
        if key in seen:
            raise DatasetError(f"{path}: line {line} repeats line {seen[key]} "
                               f"({dataset}, {scheme}, {model}, {result.resolution} px)")
        seen[key] = line
        out.append(result)
    if not out:
        raise DatasetError(f"{path}: no result rows")
    return out


def read_train_class_counts(class_counts_csv: Path) -> dict[str, list[int] | None]:
    """Train-split per-class counts per dataset from medmnist_class_counts.csv.

    A dataset maps to its counts (ordered by class index) when every train row is `verified`, and
    to `None` when any is `missing`.
    """
    path = Path(class_counts_csv)
    rows: dict[str, dict[int, int | None]] = defaultdict(dict)
    for line, row in _rows(path, COUNT_COLUMNS, "class-counts file"):
        if (row["split"] or "").strip() != "train":
            continue
        dataset = (row["dataset"] or "").strip().lower()
        try:
            index = int((row["class_index"] or "").strip())
        except ValueError:
            raise _cell_error(path, line, "class_index",
                              f"{row['class_index']!r} is not an integer") from None
        status = (row["status"] or "").strip()
        if status == "verified":
            count = _number(path, line, row, "count", required=True)
            if count is None or count != int(count):
                raise _cell_error(path, line, "count", f"{row['count']!r} is not a whole number")
            rows[dataset][index] = int(count)
        elif status == "missing":
            rows[dataset][index] = None
        else:
            raise _cell_error(path, line, "status",
                              f"{status!r} is not one of verified, missing")
    out: dict[str, list[int] | None] = {}
    for dataset, by_index in rows.items():
        values = [by_index[i] for i in sorted(by_index)]
        out[dataset] = None if any(v is None for v in values) else [int(v) for v in values]
    return out
