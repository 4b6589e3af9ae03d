"""Published results imported as run records (the external part of the meta-dataset)."""

from knowledge.meta_dataset.medmnist_plus import (
    average_check,
    import_medmnist_plus,
    load_medmnist_plus,
)

__all__ = ["average_check", "import_medmnist_plus", "load_medmnist_plus"]
