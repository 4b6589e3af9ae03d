"""`--all-offline`: every real dataset this project can read without a network, as held-out tasks.

The four MedMNIST sets kept in `../shared/data/medmnist/` (read from the data dir: point
`METALLMIX_DATA` there), a 5,000-image stratified subsample of Fashion-MNIST's training split
(val and test untouched), MNIST-5k and scikit-learn's digits. Each is held out with all its
variants (the fold drops every record of its base dataset). A dataset that cannot be read here is
skipped with the reason; a MedMNIST file is never downloaded by this check.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from knowledge import paths
from knowledge.datasets.base import ImageDataset
from knowledge.datasets.loader import split_spec
from knowledge.errors import DatasetError

ALL_OFFLINE: tuple[str, ...] = (
    "medmnist:breastmnist", "medmnist:pneumoniamnist", "medmnist:bloodmnist",
    "medmnist:organamnist", "fashion-mnist?n=5000&seed=0", "mnist-5k", "digits")
SHARED_MEDMNIST = Path(__file__).resolve().parents[3] / "shared" / "data" / "medmnist"


def medmnist_missing(spec: str) -> str | None:
    """Why a `medmnist:<flag>` spec cannot be read offline (None when its file is in the data
    dir), with a hint when the shared copy holds it."""
    name, _ = split_spec(spec)
    if not name.startswith("medmnist:"):
        return None
    flag = name.split(":", 1)[1].strip().lower()
    path = paths.data_dir() / f"{flag}.npz"
    if path.exists():
        return None
    hint = (f"; it is in {SHARED_MEDMNIST}: set METALLMIX_DATA={SHARED_MEDMNIST}"
            if (SHARED_MEDMNIST / f"{flag}.npz").exists() else "")
    return f"{path.name} is not in the data dir {path.parent}{hint}"


def available(specs: list[str], load: Callable[[str], ImageDataset]
              ) -> tuple[list[tuple[str, ImageDataset]], list[str]]:
    """The specs that load here, with their data, and one message per skipped spec."""
    ok: list[tuple[str, ImageDataset]] = []
    skipped: list[str] = []
    for spec in specs:
        reason = medmnist_missing(spec)
        if reason is None:
            try:
                ok.append((spec, load(spec)))
                continue
            except DatasetError as exc:
                reason = str(exc)
        skipped.append(f"{spec}: skipped, not available offline ({reason})")
    return ok, skipped
