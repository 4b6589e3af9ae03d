"""Turning an `ImageDataset` into tensors, batches and on-the-fly batch transforms.

Images stay uint8 (N, 3, H, W) in memory; each batch is converted to float, resized to the config's
resolution with `F.interpolate`, augmented per sample and normalised — on tensors, on the training
device, so nothing is pre-computed per resolution. Grayscale images are repeated to 3 channels, an
alpha channel is dropped. Missing val/test splits are carved out of train, stratified and seeded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from knowledge.datasets.base import ImageDataset, Split
from knowledge.errors import DatasetError

log = logging.getLogger(__name__)

VAL_FRACTION = 0.1  # of train, when a dataset has no validation split
TEST_FRACTION = 0.2  # of train, when a dataset has no test split
AUGMENTATIONS = ("none", "light", "strong")


@dataclass
class TensorSplit:
    """A split as tensors: uint8 images (N, 3, H, W) and labels (int64 (N,) or float (N, L))."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class PreparedData:
    """Train/val/test tensors plus what the loss and metrics need to know."""

    train: TensorSplit
    val: TensorSplit
    test: TensorSplit
    n_classes: int  # number of classes, or of labels when multi-label
    multilabel: bool
    notes: list[str]


def is_multilabel(dataset: ImageDataset) -> bool:
    """Multi-label: (N, L) 0/1 labels with L > 1 (or the dataset says so)."""
    y = np.asarray(dataset.train.labels)
    return dataset.task == "multi-label" or (y.ndim == 2 and y.shape[1] > 1)


def _labels(y: np.ndarray, multilabel: bool) -> np.ndarray:
    y = np.asarray(y)
    if multilabel:
        return y.reshape(len(y), -1).astype(np.float32)
    return y.reshape(len(y)).astype(np.int64)


def _to_nchw(img: np.ndarray) -> np.ndarray:
    """(H, W) / (H, W, C) uint8 -> (3, H, W)."""
    img = np.asarray(img)
    if img.ndim == 2:
        img = img[..., None]
    if img.shape[-1] == 4:
        img = img[..., :3]
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    if img.shape[-1] != 3:
        raise DatasetError(f"images must have 1, 3 or 4 channels, got shape {img.shape}")
    return np.ascontiguousarray(img.transpose(2, 0, 1))


def images_to_tensor(images: np.ndarray | list[np.ndarray], size: int) -> torch.Tensor:
    """uint8 (N, 3, H, W). Equal-sized images keep their size (resized per batch later); images of
    varying sizes are resized once to `size` x `size` here so they can be stacked."""
    if isinstance(images, np.ndarray) and images.ndim in (3, 4):
        arr = images if images.ndim == 4 else images[..., None]
        if arr.shape[-1] == 4:
            arr = arr[..., :3]
        if arr.shape[-1] == 1:
            arr = np.repeat(arr, 3, axis=-1)
        if arr.shape[-1] != 3:
            raise DatasetError(f"images must have 1, 3 or 4 channels, got shape {images.shape}")
        if arr.dtype != np.uint8:
            arr = _as_uint8(arr)
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))
    out = torch.empty((len(images), 3, size, size), dtype=torch.uint8)
    for i, img in enumerate(images):
        t = torch.from_numpy(_to_nchw(_as_uint8(np.asarray(img))))[None].float()
        out[i] = resize(t, size).round().clamp(0, 255).to(torch.uint8)[0]
    return out


def _as_uint8(arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating) and arr.size and float(np.nanmax(arr)) <= 1.0:
        arr = arr * 255.0
    return np.clip(arr, 0, 255).astype(np.uint8)


def _split_off(
    images: np.ndarray | list[np.ndarray], labels: np.ndarray, fraction: float, seed: int, multilabel: bool
) -> tuple[Split, Split]:
    """Split `fraction` of a split off, stratified by class when possible."""
    idx = np.arange(len(labels))
    stratify = None if multilabel else labels.reshape(len(labels))
    n_hold = max(1, math.ceil(fraction * len(idx)))
    try:
        keep, hold = train_test_split(idx, test_size=n_hold, random_state=seed, stratify=stratify)
    except ValueError:  # a class too small to stratify
        keep, hold = train_test_split(idx, test_size=n_hold, random_state=seed)

    def take(sel: np.ndarray) -> Split:
        imgs = images[sel] if isinstance(images, np.ndarray) else [images[i] for i in sel]
        return Split(imgs, labels[sel])

    return take(np.sort(keep)), take(np.sort(hold))


def _label_text(values: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(f"{v:g}" for v in values[:limit])
    return shown + (f", ... ({len(values)} values)" if len(values) > limit else "")


def check_labels(dataset: ImageDataset) -> int:
    """The number of classes the model predicts (`n_classes`), after checking every split's labels.

    Single-label: `n_classes` is the dataset's declared classes (`class_names`) when it has them,
    else the distinct training labels. Labels are whole numbers in 0..n_classes-1 in every split, so
    without declared classes the training labels are exactly 0..K-1 (no gaps), and a val/test label
    is always one of the training classes; anything else is a DatasetError (labels are never
    remapped: a model with 100 outputs for labels {0, 99}, or a test accuracy of 0 for a test class
    the model cannot predict, would be recorded as if it were a real result). At least two classes
    must occur in the training split. Multi-label: every split has the training split's number of
    labels (columns), each 0 or 1.
    """
    where = f"dataset {dataset.id}"
    named = (("train", dataset.train), ("val", dataset.val), ("test", dataset.test))
    splits = [(name, split) for name, split in named if split is not None]
    if is_multilabel(dataset):
        n_labels = np.asarray(dataset.train.labels).reshape(len(dataset.train), -1).shape[1]
        for name, split in splits:
            y = np.asarray(split.labels).reshape(len(split), -1)
            if y.shape[1] != n_labels:
                raise DatasetError(f"{where}: the {name} split has {y.shape[1]} labels per image, the "
                                   f"training split {n_labels}")
            if y.size and not np.isin(y, (0, 1)).all():
                raise DatasetError(f"{where}: multi-label {name} labels must be 0 or 1")
        return n_labels
    checked = {}
    for name, split in splits:
        y = np.asarray(split.labels)
        if y.ndim > 1 and (y.ndim > 2 or y.shape[1] != 1):
            raise DatasetError(f"{where}: {name} labels must have shape (N,) or (N, 1), got {y.shape}")
        y = y.reshape(len(y))
        if y.size and not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.bool_)):
            whole = np.issubdtype(y.dtype, np.floating) and np.isfinite(y).all() and (y == np.round(y)).all()
            if not whole:
                raise DatasetError(f"{where}: {name} labels must be whole class numbers 0, 1, 2, ...")
        checked[name] = np.unique(y.astype(np.int64)) if y.size else np.zeros(0, np.int64)
    seen = checked["train"]
    if len(seen) < 2:
        raise DatasetError(f"{where}: the training split has {len(seen)} class(es); need at least 2")
    declared = len(dataset.class_names) if dataset.class_names else None
    k = declared if declared is not None else len(seen)
    outside = seen[(seen < 0) | (seen >= k)]
    if outside.size:
        if declared is not None:
            raise DatasetError(f"{where}: train labels include {_label_text(outside)}, outside the "
                               f"{k} declared classes 0..{k - 1}")
        raise DatasetError(f"{where}: train labels must be the class numbers 0..{k - 1} of its {k} "
                           f"classes, found {_label_text(seen)}; number the classes 0..{k - 1}")
    for name in ("val", "test"):
        if name in checked:
            extra = checked[name][(checked[name] < 0) | (checked[name] >= k)]
            if extra.size:
                raise DatasetError(f"{where}: {name} labels include {_label_text(extra)}, which is not "
                                   f"one of the {k} training classes 0..{k - 1}")
    return k


def prepare(dataset: ImageDataset, *, resolution: int, seed: int = 0) -> PreparedData:
    """Tensors for train/val/test; missing val (10 %) / test (20 %) splits come from train. The labels
    are checked first (see `check_labels`)."""
    multilabel = is_multilabel(dataset)
    train, val, test = dataset.train, dataset.val, dataset.test
    notes = []
    if len(train) < 2:
        raise DatasetError(f"dataset {dataset.id}: the training split has {len(train)} image(s); need at least 2")
    n_classes = check_labels(dataset)
    if test is None or len(test) == 0:
        train, test = _split_off(train.images, np.asarray(train.labels), TEST_FRACTION, seed, multilabel)
        notes.append(f"no test split: held out {len(test)} training images (stratified, seed {seed})")
    if val is None or len(val) == 0:
        train, val = _split_off(train.images, np.asarray(train.labels), VAL_FRACTION, seed, multilabel)
        notes.append(f"no val split: held out {len(val)} training images (stratified, seed {seed})")
    for note in notes:
        log.info("%s: %s", dataset.id, note)

    def tensors(split: Split) -> TensorSplit:
        return TensorSplit(
            images_to_tensor(split.images, resolution),
            torch.from_numpy(_labels(split.labels, multilabel)),
        )

    return PreparedData(tensors(train), tensors(val), tensors(test), n_classes, multilabel, notes)


def batch_indices(
    n: int, batch_size: int, *, shuffle: bool, generator: torch.Generator | None = None
) -> Iterator[torch.Tensor]:
    """Index batches; when shuffling (training), a last batch of 1 is dropped (BatchNorm needs 2)."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        idx = order[start:start + batch_size]
        if shuffle and len(idx) < 2 and n >= 2:
            continue
        yield idx


def steps_per_epoch(n: int, batch_size: int) -> int:
    full, rest = divmod(n, batch_size)
    return full + (1 if rest >= 2 or (rest == 1 and full == 0) else 0)


def resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """Float (B, C, H, W) -> (B, C, size, size); antialiased when shrinking."""
    if x.shape[-2:] == (size, size):
        return x
    shrink = x.shape[-2] > size or x.shape[-1] > size
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)


class BatchTransform:
    """uint8 batch -> normalised float batch at `resolution`, augmented when training.

    `canvas`: when the network needs a larger input than `resolution` (e.g. Inception-v3, 75 px),
    the resized image is centred on a black canvas of that size, as MedMNIST+ did for its small
    size variants (it padded every image onto a 224 px canvas).

    `light`: random horizontal flip and a random shift/scale crop (up to 12.5 % shift, scale 0.9-1.1,
    reflected borders); `strong`: also rotation up to 15 degrees, scale 0.8-1.2, brightness and
    contrast jitter (+-20 %). Parameters are drawn per sample, applied with one `affine_grid` call.
    """

    def __init__(self, resolution: int, augmentation: str, mean: tuple[float, ...], std: tuple[float, ...],
                 *, channels_last: bool = False, canvas: int | None = None) -> None:
        if augmentation not in AUGMENTATIONS:
            raise ValueError(f"augmentation must be one of {AUGMENTATIONS}, got {augmentation!r}")
        self.resolution = resolution
        self.augmentation = augmentation
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1)
        self.channels_last = channels_last
        self.canvas = canvas if canvas and canvas > resolution else None

    def __call__(self, images: torch.Tensor, *, train: bool, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        x = resize(images.float().div_(255.0), self.resolution)
        if train and self.augmentation != "none":
            x = self._augment(x, generator)
        if self.canvas is not None:
            before = (self.canvas - self.resolution) // 2
            after = self.canvas - self.resolution - before
            x = F.pad(x, (before, after, before, after))
        mean, std = self.mean.to(x.device), self.std.to(x.device)
        x = (x - mean) / std
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _augment(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        b = x.shape[0]
        strong = self.augmentation == "strong"

        def uniform(low: float, high: float) -> torch.Tensor:
            return (torch.rand(b, generator=generator) * (high - low) + low).to(x.device)

        flip = torch.where(uniform(0, 1) < 0.5, -1.0, 1.0)
        scale = uniform(0.8, 1.2) if strong else uniform(0.9, 1.1)
        angle = uniform(-15, 15) * math.pi / 180 if strong else torch.zeros(b, device=x.device)
        shift = 0.25  # in normalised coordinates ([-1, 1]): 12.5 % of the image
        tx, ty = uniform(-shift, shift), uniform(-shift, shift)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.stack([
            torch.stack([cos * flip, -sin, tx], dim=1),
            torch.stack([sin * flip, cos, ty], dim=1),
        ], dim=1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        if strong:
            brightness = uniform(0.8, 1.2).view(b, 1, 1, 1)
            contrast = uniform(0.8, 1.2).view(b, 1, 1, 1)
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            x = ((x - mean) * contrast + mean) * brightness
            x = x.clamp_(0.0, 1.0)
        return x
