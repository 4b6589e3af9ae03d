"""What MetaLLMiX needs to know about the MedMNIST 2D datasets beyond the `medmnist` package's INFO."""

from __future__ import annotations

# Imaging modality of each 2D MedMNIST dataset, in our MODALITIES vocabulary.
MEDMNIST_MODALITY: dict[str, str] = {
    "pathmnist": "histopathology",
    "chestmnist": "x-ray",
    "dermamnist": "dermoscopy",
    "octmnist": "oct",
    "pneumoniamnist": "x-ray",
    "retinamnist": "fundus",
    "breastmnist": "ultrasound",
    "bloodmnist": "microscopy",
    "tissuemnist": "microscopy",
    "organamnist": "ct",
    "organcmnist": "ct",
    "organsmnist": "ct",
}

MEDMNIST_2D: tuple[str, ...] = tuple(MEDMNIST_MODALITY)

# The medmnist package's INFO task strings mapped onto our TaskType.
TASK_MAP: dict[str, str] = {
    "binary-class": "binary",
    "multi-class": "multi-class",
    "multi-label, binary-class": "multi-label",
    "ordinal-regression": "ordinal-regression",
}


def medmnist_info(flag: str) -> dict:
    """The `medmnist` package's INFO entry for a 2D flag (e.g. 'pneumoniamnist'), with our modality
    and task type added. Raises KeyError naming the known flags."""
    from medmnist import INFO

    if flag not in MEDMNIST_MODALITY:
        raise KeyError(f"unknown MedMNIST 2D dataset {flag!r}; known: {', '.join(MEDMNIST_2D)}")
    info = dict(INFO[flag])
    info["modality"] = MEDMNIST_MODALITY[flag]
    info["task_type"] = TASK_MAP[info["task"]]
    return info
