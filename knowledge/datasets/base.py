"""The in-memory dataset every loader returns and every consumer (analyze, launcher) reads."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from knowledge.metafeatures import MetaFeatures, from_labels


@dataclass
class Split:
    """One split. `images` is uint8 (N, H, W, C) when all images share a size, else a list of
    uint8 (H, W, C) arrays; `labels` is int64 (N,) (or (N, L) 0/1 for multi-label)."""

    images: np.ndarray | list[np.ndarray]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class ImageDataset:
    """A loaded dataset. `id` is canonical (re-loading `load_dataset(id)` gives the same data)."""

    id: str
    base: str
    train: Split
    val: Split | None = None
    test: Split | None = None
    class_names: list[str] | None = None
    modality: str | None = None
    task: str | None = None
    medical: bool = True
    variant: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def n_classes(self) -> int:
        y = self.train.labels
        return int(y.shape[1]) if y.ndim == 2 else int(len(self.class_names or np.unique(y)))

    def image_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of the training images (median size when they vary)."""
        imgs = self.train.images
        if isinstance(imgs, np.ndarray):
            return int(imgs.shape[1]), int(imgs.shape[2]), int(imgs.shape[3])
        hs = [im.shape[0] for im in imgs]
        ws = [im.shape[1] for im in imgs]
        return int(np.median(hs)), int(np.median(ws)), int(imgs[0].shape[2])

    def meta_features(self, modality: str | None = None) -> MetaFeatures:
        """The paper's meta-features, computed on the training split."""
        h, w, c = self.image_shape()
        return from_labels(self.train.labels, height=h, width=w, channels=c,
                           modality=modality or self.modality, task=self.task)
