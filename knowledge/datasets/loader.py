"""`load_dataset(spec)`: one entry point for every kind of dataset MetaLLMiX reads.

A spec is a `.npz` path, an image folder, or a named source (`medmnist:<flag>`, `fashion-mnist`,
`mnist-5k`, `digits`), optionally followed by a variant query (`?n=500&imbalance=0.2&seed=0`).
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from pathlib import Path

import numpy as np

from knowledge.datasets.base import ImageDataset
from knowledge.datasets.folder import load_folder
from knowledge.datasets.npz import load_npz
from knowledge.datasets.roots import confined, resolve_in_roots
from knowledge.datasets.sources import is_source, load_source, source_names
from knowledge.datasets.variants import Variant
from knowledge.errors import DatasetError
from knowledge.metafeatures import normalize_modality

log = logging.getLogger(__name__)


def split_spec(spec: str | Path) -> tuple[str, str]:
    """(dataset, query) of a spec. A path that exists as written is never split at '?'."""
    text = str(spec).strip()
    if not text:
        raise DatasetError("empty dataset spec: ''")
    if "?" not in text or Path(text).expanduser().exists():
        return text, ""
    base, _, query = text.partition("?")
    return base, query


def _load_base(name: str) -> ImageDataset:
    if is_source(name):
        return load_source(name)
    path = Path(name).expanduser()
    if path.is_dir():
        return load_folder(path)
    if path.is_file():
        if path.suffix.lower() == ".npz":
            return load_npz(path)
        raise DatasetError(f"unsupported dataset format {path.suffix or '(no extension)'!r} "
                           f"(expected a .npz file or a folder of class subfolders): {path}")
    if path.suffix or any(sep in name for sep in ("/", "\\")):
        raise DatasetError(f"dataset not found: {path}")
    raise DatasetError(f"unknown dataset {name!r}: not a file or folder, and not one of "
                       f"{', '.join(source_names())}")


def _check_usable(ds: ImageDataset) -> None:
    """A training split needs at least two classes with images."""
    y = ds.train.labels
    if len(y) == 0:
        raise DatasetError(f"the training split is empty: {ds.id}")
    present = int((y.sum(axis=0) > 0).sum()) if y.ndim == 2 else len(np.unique(y))
    if present < 2:
        raise DatasetError(f"the training split has only {present} class; need at least 2: {ds.id}")


def load_dataset(spec: str | Path, *, modality: str | None = None,
                 confine: bool = False) -> ImageDataset:
    """Load a dataset (see the module docstring); `modality` overrides the dataset's own.

    `confine=True` for an untrusted spec (from the agent or the web UI): its path must lie inside
    the allowed data roots, and so must every file and folder read for it, links resolved (see
    `knowledge.datasets.roots`). Named sources read their fixed locations either way.
    Raises DatasetError (one line naming the problem and the file) for anything unusable.
    """
    if confine:
        spec = resolve_in_roots(spec)
    name, query = split_spec(spec)
    where = str(Path(name).expanduser()) if not is_source(name) else name
    variant = Variant.parse(query, where)  # validate the query before reading any data
    if modality is not None:
        try:
            modality = normalize_modality(modality)
        except ValueError as exc:
            raise DatasetError(f"{exc}: {spec}") from None
    with confined() if confine and not is_source(name) else nullcontext():
        ds = _load_base(name)
    _check_usable(ds)
    if variant is not None:
        ds = variant.apply(ds)
        _check_usable(ds)
    if modality is not None:
        ds.modality = modality
    log.debug("loaded %s: %d train images, shape %s", ds.id, len(ds.train), ds.image_shape())
    return ds
