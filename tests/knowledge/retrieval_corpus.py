"""The retriever's tests' corpus: run records on small stand-ins for five MedMNIST datasets, and an
embedder that counts what it embeds."""

from __future__ import annotations

from knowledge.metafeatures import MetaFeatures, from_class_counts
from knowledge.retrieval import HashingEmbedder
from knowledge.runs.record import Outcome, Provenance, RunRecord
from knowledge.search_space import TrainConfig

CITATION = ('S. Doerrich, F. Di Salvo, J. Brockmann, C. Ledig, "Rethinking model prototyping through '
            'the MedMNIST+ dataset collection", Scientific Reports 15, 7669 (2025)')

# Small stand-ins for five MedMNIST datasets: train class counts, image size, channels, modality.
DATASETS = {
    "bloodmnist": ([852, 2181, 1085, 2026, 849, 993, 2330, 1643], 28, 3, "microscopy"),
    "pneumoniamnist": ([1214, 3494], 28, 1, "x-ray"),
    "organamnist": ([1956, 1390, 1357, 1474, 3963, 3817, 6164, 3919, 3929, 3031, 3561], 28, 1, "ct"),
    "dermamnist": ([228, 359, 769, 80, 779, 4693, 99], 28, 3, "dermoscopy"),
    "breastmnist": ([147, 399], 28, 1, "ultrasound"),
}
MODELS = ("resnet18", "mobilenetv3_small_100", "vit_tiny_patch16_224")
SCHEMES = ("end_to_end", "linear_probing")


def meta_of(name: str) -> MetaFeatures:
    counts, size, channels, modality = DATASETS[name]
    return from_class_counts(counts, height=size, width=size, channels=channels, modality=modality)


def make_record(base: str, model: str = "resnet18", scheme: str = "end_to_end", *, acc: float = 0.9,
                status: str = "ok", source: str = "own", meta: MetaFeatures | None = None,
                variant: str | None = None, run_id: str | None = None, **outcome: float) -> RunRecord:
    return RunRecord(
        run_id=run_id or RunRecord.stable_id(base, model, scheme, variant, status),
        dataset_id=f"medmnist:{base}" + (f"?{variant}" if variant else ""),
        base_dataset=base,
        variant=variant,
        meta_features=meta or meta_of(base),
        config=TrainConfig(model=model, scheme=scheme, resolution=28, lr=1e-3, epochs=5),
        outcome=Outcome(test_acc=acc, **outcome) if status == "ok" else Outcome(),
        status=status,
        error="CUDA out of memory while allocating 2 GiB" if status != "ok" else None,
        provenance=Provenance(source=source, seed=3, device="cpu",
                              timestamp="2025-05-01T10:00:00+00:00",
                              citation=CITATION if source == "published" else None),
    )


def corpus() -> list[RunRecord]:
    """30 ok runs (5 datasets x 3 models x 2 schemes, accuracies all distinct) + 1 failed run."""
    records = []
    for d, base in enumerate(DATASETS):
        for m, model in enumerate(MODELS):
            for s, scheme in enumerate(SCHEMES):
                records.append(make_record(base, model, scheme, acc=0.95 - 0.1 * d / 5 - 0.02 * m - 0.01 * s))
    records.append(make_record("bloodmnist", "resnet18", status="out-of-memory"))
    return records


class CountingEmbedder(HashingEmbedder):
    """Hashing embedder that counts the texts it embeds."""

    def __init__(self, n_features: int = 256) -> None:
        super().__init__(n_features)
        self.embedded = 0

    def embed(self, texts):  # type: ignore[no-untyped-def]
        self.embedded += len(texts)
        return super().embed(texts)
