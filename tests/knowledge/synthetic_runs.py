"""Small synthetic run records for the meta-learner tests: an obvious signal, known timings.

Accuracy = 0.55 + 0.25 x pretrained + a little per resolution and per dataset + noise; own CPU runs
of three small models are timed with seconds per image-epoch = 2e-4 x params_m x (res/28)^2
(/3 for linear probing), exactly the shape of the meta-learner's FLOPs-proxy prior.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from knowledge.metafeatures import from_traits
from knowledge.runs.record import Outcome, Provenance, RunRecord, record_to_row
from knowledge.search_space import MODELS, TrainConfig

MODELS_USED = ("resnet18", "mobilenetv3_small_100", "efficientnet_lite0", "vit_tiny_patch16_224",
               "resnet50", "densenet121")
TIMED = ("resnet18", "mobilenetv3_small_100", "efficientnet_lite0")
TRUE_C0 = 2e-4
DATASETS = [
    # name, n, classes, imbalance, modality, size
    ("alpha", 500, 2, 3.0, "x-ray", 64),
    ("beta", 1200, 3, 1.5, "ct", 128),
    ("gamma", 3000, 5, 8.0, "dermoscopy", 224),
    ("delta", 8000, 8, 2.0, "histopathology", 224),
    ("eps", 800, 2, 1.2, "ultrasound", 28),
    ("zeta", 2000, 4, 4.0, "fundus", 128),
]


def true_sec_per_img_epoch(model: str, resolution: int, scheme: str) -> float:
    factor = 1 / 3 if scheme == "linear_probing" else 1.0
    return TRUE_C0 * MODELS[model].params_m * (resolution / 28) ** 2 * factor


def true_acc(pretrained: bool, resolution: int, offset: float) -> float:
    return 0.55 + 0.25 * pretrained + 0.02 * math.log2(resolution / 28) + offset


def synthetic_records(per_dataset: int = 40, seed: int = 0,
                      datasets: list[tuple] | None = None) -> list[RunRecord]:
    rng = np.random.default_rng(seed)
    records = []
    for d, (name, n, k, ratio, modality, size) in enumerate(datasets or DATASETS):
        meta = from_traits(n_instances=n, n_classes=k, imbalance_ratio=ratio, modality=modality,
                           height=size, channels=1 if modality in ("x-ray", "ct") else 3)
        offset = (d - 2.5) * 0.015
        for i in range(per_dataset):
            model = str(rng.choice(MODELS_USED))
            pretrained = bool(rng.integers(2))
            scheme = "linear_probing" if pretrained and rng.random() < 0.3 else "end_to_end"
            resolution = int(rng.choice([28, 64, 128, 224]))
            epochs = int(rng.choice([3, 10, 30]))
            config = TrainConfig(
                model=model, pretrained=pretrained, scheme=scheme, resolution=resolution,
                lr=float(rng.choice([1e-4, 3e-4, 1e-3, 3e-3])),
                weight_decay=float(rng.choice([0.0, 1e-4, 1e-2])),
                batch_size=int(rng.choice([32, 64, 128])), epochs=epochs,
                augmentation=str(rng.choice(["none", "light", "strong"])),
                label_smoothing=float(rng.choice([0.0, 0.1])),
            )
            acc = float(np.clip(true_acc(pretrained, resolution, offset)
                                + rng.normal(0, 0.01), 0, 1))
            own = i % 2 == 0
            timed = own and model in TIMED and resolution <= 128
            status = "failed" if i == per_dataset - 1 else "ok"
            outcome = Outcome(
                test_acc=None if (status != "ok" or i % 7 == 3) else acc,
                val_acc=acc if (status == "ok" and i % 7 == 3) else None,
                train_seconds=(true_sec_per_img_epoch(model, resolution, scheme) * n * epochs
                               * float(np.exp(rng.normal(0, 0.03)))) if timed else None,
                epochs_completed=epochs if timed else None,
            )
            records.append(RunRecord(
                run_id=RunRecord.stable_id("synthetic", seed, name, i),
                dataset_id=f"synthetic:{name}", base_dataset=name, meta_features=meta,
                config=config, outcome=outcome, status=status,
                provenance=Provenance(source="own" if own else "published",
                                      device="Intel Xeon CPU" if own else None,
                                      citation=None if own else "synthetic (tests)"),
            ))
    return records


def synthetic_frame(per_dataset: int = 40, seed: int = 0) -> pd.DataFrame:
    return pd.DataFrame([record_to_row(r) for r in synthetic_records(per_dataset, seed)])
