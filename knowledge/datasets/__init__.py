"""Dataset loading: MedMNIST-layout .npz files, folders of class subfolders, named sources, variants."""

from knowledge.datasets.base import ImageDataset, Split

__all__ = ["ImageDataset", "Split"]
