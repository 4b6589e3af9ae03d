"""The MedMNIST+ benchmark (1,440 published results) as `RunRecord`s.

Source: S. Doerrich, F. Di Salvo, J. Brockmann, C. Ledig, "Rethinking model prototyping through the
MedMNIST+ dataset collection", Scientific Reports 15, 7669 (2025), doi:10.1038/s41598-025-92156-9
(arXiv:2404.15786). `results.csv` holds its per-dataset tables: 12 MedMNIST 2D datasets x 10
ImageNet-pretrained models x 4 resolutions (28/64/128/224) x 3 schemes (`end_to_end`,
`linear_probing`, `knn`), test ACC/AUC in % as mean +- std over 3 seeds (k-NN rows: ACC only).

Training setup of the source, from its code (github.com/sdoerrich97/rethinking-model-prototyping-
MedMNISTPlus, commit b34dfc5; line numbers of that commit). One fixed setup, nothing tuned:

- epochs 100, learning rate 1e-4, batch size 64 (eval batch 256): config.yaml lines 10-13.
- optimizer AdamW (`from timm.optim import AdamW`, train.py line 26), built as
  `AdamW(model.parameters(), lr=config['learning_rate'])` (train.py line 86): weight decay is not set,
  so it is the library default 0.01 (timm's AdamW and torch's AdamW both default to 1e-2).
- cosine LR schedule over the 100 epochs, no warm-up (`CosineLRScheduler(t_initial=epochs)`,
  train.py line 87; TrainConfig has no scheduler field, so this is not recorded per run).
- loss: CrossEntropyLoss, BCEWithLogitsLoss for multi-label ChestMNIST (train.py lines 91-96); no
  label smoothing (the default 0), so `label_smoothing = 0.0`.
- early stopping after 5 epochs without a lower validation loss (train.py line 103), and the
  best-validation-loss checkpoint is the one tested (evaluate.py line 63): `epochs = 100` is the
  budget, not necessarily the epochs run.
- augmentation: none. The only transforms are ToTensor, Normalize with the model's mean/std and a
  zero Pad of the image to 224 x 224 (main.py lines 81-89; the same in train.py and evaluate.py):
  a 28/64/128 px image is NOT resized, it is placed in the centre of a black 224 x 224 canvas.
  Images are loaded with `as_rgb=True` (main.py lines 92-94), i.e. grey images are repeated to 3
  channels.
- linear probing trains only `model.get_classifier()` (train.py lines 61-71); k-NN uses frozen
  pretrained features with k = 11 (config.yaml line 21; `NearestNeighbors(n_neighbors=11)`,
  evaluate.py line 88) and reports no AUC ("AUC cannot be calculated for the kNN approach",
  evaluate.py). k-NN does not train, so its optimizer/lr/epochs fields below are the source's
  fixed config values, unused by that scheme.
- seeds 9930641, 115149041, 252139603 (config.yaml line 22): n_seeds = 3. k-NN rows have no std in
  the tables (frozen features, deterministic).
- models (config.yaml line 20): 'vgg16', 'alexnet' (torchvision, train.py lines 50-52), 'resnet18',
  'densenet121', 'efficientnet_b4', 'vit_base_patch16_224', 'vit_base_patch16_clip_224',
  'eva02_base_patch16_clip_224', 'vit_base_patch16_224.dino', 'samvit_base_patch16', created with
  `timm.create_model(name, pretrained=True)`. Most names carry no pretrained tag and the source's
  environment.yaml does not pin timm, so the exact weight tags are not recorded by the source.

Not found in the source: gradient clipping, mixed precision and the timm version (none set/pinned).

Mapping onto our search space (`MODEL_NAMES`; every record validates against `SPACE`). The csv's
model labels map to the `MODELS` keys of knowledge/search_space.py, which use the timm names the
source ran: CLIP ViT-B/16 -> `vit_base_patch16_clip_224` (untagged in the source; timm 1.0.31 resolves it
to `.laion2b_ft_in12k_in1k`, and the source pins no timm version, so the exact weights are not recorded);
EVA-02 ViT-B/16 -> `eva02_base_patch16_clip_224` (timm: `.merged2b`).
AlexNet has no timm model (`MODELS['alexnet'].trainable` is False): its records are kept for the
meta-learner, but the launcher cannot train it.

Meta-features: from the `medmnist` package's INFO (train split size, number of labels, channels,
task) plus our modality table (knowledge/datasets/medmnist_info.py), and the train-split class
counts of medmnist_class_counts.csv where their status is `verified` (imbalance, entropy and
class-size statistics; `n_instances` stays the official train size, which for multi-label
ChestMNIST is the number of images, not the sum of per-label positives). Where counts are
`missing`, those stay missing and only `class_size_mean = n / k` is given. Image size: MedMNIST+
provides every dataset at 28, 64, 128 and 224 px, so the native size of the dataset (a
meta-feature) is `height = width = 224`; which size variant a run trained on is the config's
`resolution` (a choice, like the model).

Reading and checking the csv files is `knowledge.meta_dataset.medmnist_plus_csv` (its names are
importable from here too); this module turns the rows into records, imports them and checks them
against the paper's average table.
"""

from __future__ import annotations

import logging
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from knowledge import paths
from knowledge.datasets.medmnist_info import MEDMNIST_2D, medmnist_info
from knowledge.errors import ConfigError, DatasetError
from knowledge.meta_dataset.medmnist_plus_csv import (
    COUNT_COLUMNS,
    MODEL_NAMES,
    RESOLUTIONS,
    RESULT_COLUMNS,
    PublishedResult,
    _number,
    _rows,
    read_results,
    read_train_class_counts,
)
from knowledge.metafeatures import MetaFeatures, from_class_counts, from_traits
from knowledge.runs.record import Outcome, Provenance, RunRecord
from knowledge.search_space import MODELS, validate_config

if TYPE_CHECKING:
    from knowledge.runs.store import RunStore

log = logging.getLogger(__name__)

SOURCE_TAG = "medmnist+"
CITATION = (
    "S. Doerrich, F. Di Salvo, J. Brockmann, C. Ledig, \"Rethinking model prototyping through the "
    "MedMNIST+ dataset collection\", Scientific Reports 15, 7669 (2025), "
    "doi:10.1038/s41598-025-92156-9 (arXiv:2404.15786)"
)
CITATION_SHORT = "Doerrich et al., Sci. Rep. 2025"
# Fixed, so that re-imports give identical records: the first public release of these results
# (arXiv:2404.15786 v1).
PUBLISHED = "2024-04-24T00:00:00+00:00"

NATIVE_SIZE = 224
N_SEEDS = 3
# The source's fixed training setup (module docstring), in TrainConfig fields.
SOURCE_CONFIG: dict[str, Any] = {
    "pretrained": True,
    "optimizer": "adamw",
    "lr": 1e-4,
    "weight_decay": 0.01,
    "batch_size": 64,
    "epochs": 100,
    "augmentation": "none",
    "label_smoothing": 0.0,
}


def shared_data_dir() -> Path:
    """The project's shared data folder (`METALLMIX_SHARED_DATA`, else `<checkout>/../shared/data`)."""
    env = os.environ.get("METALLMIX_SHARED_DATA")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def default_results_csv() -> Path:
    """Where the published results table is looked for by default: the shared data folder, else the
    byte-identical copy shipped in the package (knowledge/data/published/, with its SOURCE.md)."""
    shared = shared_data_dir() / "medmnist_plus" / "results.csv"
    return shared if shared.exists() else paths.PACKAGE_DATA / "published" / "medmnist_plus" / "results.csv"


def default_class_counts_csv(results_csv: Path) -> Path:
    """The class-counts table that sits next to the `medmnist_plus/` folder of `results_csv`."""
    return Path(results_csv).parent.parent / "medmnist_class_counts.csv"


def default_average_csv(results_csv: Path | None = None) -> Path:
    """The paper's average table, next to `results_csv`."""
    return Path(results_csv or default_results_csv()).parent / "average_table.csv"


# --- building records --------------------------------------------------------------------------
def dataset_meta_features(flag: str, train_counts: Sequence[int] | None,
                          counts_file: Path | None = None) -> MetaFeatures:
    """Meta-features of one MedMNIST+ dataset (see the module docstring for the decisions)."""
    info = medmnist_info(flag)
    n_train = int(info["n_samples"]["train"])
    k = len(info["label"])
    traits = dict(height=NATIVE_SIZE, width=NATIVE_SIZE, channels=int(info["n_channels"]),
                  modality=info["modality"], task=info["task_type"])
    if train_counts is None:
        return from_traits(n_instances=n_train, n_classes=k, **traits)
    where = f"{counts_file}: " if counts_file else ""
    if len(train_counts) != k:
        raise DatasetError(f"{where}{flag} has {len(train_counts)} train class counts, "
                           f"but the medmnist package lists {k} labels")
    if info["task_type"] != "multi-label" and sum(train_counts) != n_train:
        raise DatasetError(f"{where}{flag} train class counts sum to {sum(train_counts)}, "
                           f"not the official train split size {n_train}")
    mf = from_class_counts(train_counts, **traits)
    return mf.model_copy(update={"n_instances": n_train, "n_classes": k})


def to_record(result: PublishedResult, meta_features: MetaFeatures, results_csv: Path) -> RunRecord:
    """One published result as a run record (deterministic: same row -> identical record)."""
    try:
        config = validate_config({
            **SOURCE_CONFIG,
            "model": MODEL_NAMES[result.model],
            "scheme": result.scheme,
            "resolution": result.resolution,
        })
    except ConfigError as exc:
        raise DatasetError(f"{results_csv}: line {result.line}: config outside the search space: "
                           f"{exc}") from None

    def frac(value: float | None) -> float | None:
        return None if value is None else round(value / 100.0, 6)

    has_auc = result.scheme != "knn"
    return RunRecord(
        run_id=RunRecord.stable_id(SOURCE_TAG, result.dataset, result.scheme, result.model,
                                   result.resolution),
        dataset_id=f"medmnist:{result.dataset}",
        base_dataset=result.dataset,
        variant=None,
        medical=True,
        meta_features=meta_features,
        config=config,
        outcome=Outcome(
            test_acc=frac(result.acc_mean),
            test_acc_std=frac(result.acc_std),
            test_auc=frac(result.auc_mean) if has_auc else None,
            test_auc_std=frac(result.auc_std) if has_auc else None,
            n_seeds=N_SEEDS,
        ),
        status="ok",
        provenance=Provenance(
            source="published",
            code_version=None,
            seed=None,
            device=None,
            timestamp=PUBLISHED,
            citation=CITATION,
            study=SOURCE_TAG,
        ),
    )


def load_medmnist_plus(results_csv: Path, class_counts_csv: Path | None = None) -> list[RunRecord]:
    """The 1,440 published MedMNIST+ results as run records, in the csv's order.

    `class_counts_csv` (medmnist_class_counts.csv) adds the class-balance meta-features of the
    datasets whose counts are verified; without it they stay missing.
    """
    results = read_results(results_csv)
    counts = read_train_class_counts(class_counts_csv) if class_counts_csv is not None else {}
    features: dict[str, MetaFeatures] = {}
    for flag in sorted({r.dataset for r in results}):
        if class_counts_csv is not None and flag not in counts:
            log.info("%s: no class counts for %s; class balance left missing", class_counts_csv, flag)
        features[flag] = dataset_meta_features(flag, counts.get(flag), class_counts_csv)
    records = [to_record(r, features[r.dataset], Path(results_csv)) for r in results]
    log.info("loaded %d MedMNIST+ records from %s", len(records), results_csv)
    return records


def untrainable_counts(records: Iterable[RunRecord]) -> dict[str, int]:
    """How many records use a model the launcher cannot train (`MODELS[...].trainable` False)."""
    return dict(Counter(r.config.model for r in records if not MODELS[r.config.model].trainable))


def import_medmnist_plus(store: RunStore, results_csv: Path | None = None,
                         class_counts_csv: Path | None = None, *, replace: bool = False) -> int:
    """Load the published results into `store`; returns how many records were new.

    Defaults: `default_results_csv()` and the class-counts file next to it (if present).
    Importing again adds 0 (deterministic run_ids and content).
    """
    results_csv = Path(results_csv) if results_csv is not None else default_results_csv()
    if class_counts_csv is None:
        sibling = default_class_counts_csv(results_csv)
        class_counts_csv = sibling if sibling.is_file() else None
    records = load_medmnist_plus(results_csv, class_counts_csv)
    return store.add_many(records, replace=replace)


# --- consistency check -------------------------------------------------------------------------
def average_check(records: Iterable[RunRecord], average_csv: Path | None = None) -> float:
    """Largest absolute difference, in percentage points, between the per-(scheme, model,
    resolution) mean of the records over their datasets and the paper's average table (all four
    columns where both have a value). A check of the import's mapping and unit conversion."""
    path = Path(average_csv) if average_csv is not None else default_average_csv()
    labels = {v: k for k, v in MODEL_NAMES.items()}
    fields = {"acc_mean": "test_acc", "acc_std": "test_acc_std",
              "auc_mean": "test_auc", "auc_std": "test_auc_std"}
    sums: dict[tuple[str, str, int, str], list[float]] = defaultdict(list)
    for r in records:
        if r.provenance.study != SOURCE_TAG:
            continue
        key = (r.config.scheme, labels[r.config.model], r.config.resolution)
        for column, attr in fields.items():
            value = getattr(r.outcome, attr)
            if value is not None:
                sums[(*key, column)].append(value * 100.0)
    if not sums:
        raise DatasetError("average check: no MedMNIST+ records given")
    worst, compared = 0.0, 0
    for line, row in _rows(path, RESULT_COLUMNS, "MedMNIST+ average table"):
        resolution = _number(path, line, row, "resolution", required=True, high=1e4)
        key = (row["scheme"].strip(), row["model"].strip(), int(resolution or 0))
        for column in fields:
            published = _number(path, line, row, column, required=False, high=100.0)
            ours = sums.get((*key, column))
            if published is None or not ours:
                continue
            worst = max(worst, abs(sum(ours) / len(ours) - published))
            compared += 1
    if compared == 0:
        raise DatasetError(f"{path}: no cell matches the given records")
    log.info("average check: %d cells, max |difference| %.4f points", compared, worst)
    return worst


__all__ = [
    "CITATION",
    "CITATION_SHORT",
    "COUNT_COLUMNS",
    "MEDMNIST_2D",
    "MODEL_NAMES",
    "NATIVE_SIZE",
    "N_SEEDS",
    "PUBLISHED",
    "RESOLUTIONS",
    "RESULT_COLUMNS",
    "SOURCE_CONFIG",
    "SOURCE_TAG",
    "PublishedResult",
    "average_check",
    "dataset_meta_features",
    "default_average_csv",
    "default_class_counts_csv",
    "default_results_csv",
    "import_medmnist_plus",
    "load_medmnist_plus",
    "read_results",
    "read_train_class_counts",
    "shared_data_dir",
    "to_record",
    "untrainable_counts",
]
