"""Dataset loading: MedMNIST-layout .npz files, folders of class subfolders, named sources, variants.

`load_dataset(spec, modality=None)` is the entry point; see knowledge.datasets.loader.
"""

from knowledge.datasets.base import ImageDataset, Split
from knowledge.datasets.loader import load_dataset, split_spec
from knowledge.datasets.sources import SOURCES, source_names
from knowledge.datasets.variants import ALLOWED_KEYS, Variant, stratified_indices

__all__ = [
    "ALLOWED_KEYS",
    "SOURCES",
    "ImageDataset",
    "Split",
    "Variant",
    "load_dataset",
    "source_names",
    "split_spec",
    "stratified_indices",
]
