"""Run records for the store's tests (and the CLI's and the security checks'): a small own run, a
published-style run, and a mix of both with a failed run."""

from __future__ import annotations

from knowledge.metafeatures import from_class_counts
from knowledge.runs.record import Outcome, Provenance, RunRecord
from knowledge.search_space import TrainConfig


def make_record(run_id: str, **changes: object) -> RunRecord:
    """A small, deterministic own run (same arguments -> identical record)."""
    number = sum(map(ord, run_id))
    record = RunRecord(
        run_id=run_id,
        dataset_id="medmnist:pneumoniamnist?n=500&seed=0",
        base_dataset="pneumoniamnist",
        variant="n=500&seed=0",
        meta_features=from_class_counts([135, 365], height=28, width=28, channels=1, modality="x-ray"),
        config=TrainConfig(model="resnet18", lr=1e-3 * (1 + number % 5), epochs=3),
        outcome=Outcome(val_acc=0.81, test_acc=0.5 + (number % 40) / 100, train_seconds=12.5,
                        epochs_completed=3),
        provenance=Provenance(source="own", code_version="0.1.0+gabc1234", seed=number % 3,
                              device="cpu", timestamp="2025-01-02T03:04:05+00:00"),
    )
    return record.model_copy(update=changes)


def published_record(flag: str, model: str) -> RunRecord:
    """A published-style record: no seed, std over seeds, citation, a large model."""
    return RunRecord(
        run_id=RunRecord.stable_id("medmnist+", flag, model),
        dataset_id=f"medmnist:{flag}",
        base_dataset=flag,
        meta_features=from_class_counts([852, 2440, 1200], height=224, width=224, channels=3,
                                        modality="microscopy"),
        config=TrainConfig(model=model, scheme="linear_probing", resolution=224, epochs=100),
        outcome=Outcome(test_acc=0.912, test_acc_std=0.004, test_auc=0.991, n_seeds=3),
        provenance=Provenance(source="published", citation="Doerrich et al. 2024, MedMNIST+",
                              timestamp="2024-05-01T00:00:00+00:00"),
    )


def varied_records() -> list[RunRecord]:
    return [
        make_record("own-1"),
        make_record("own-2", status="failed", error="CUDA out of memory: tried to allocate 2 GiB",
                    outcome=Outcome()),
        published_record("bloodmnist", "vit_base_patch16_224.dino"),
        published_record("organamnist", "vgg16"),
    ]
