"""A folder of class subfolders of PNG/JPEG images (`root/<class>/<image>`), optionally split into
`root/train/<class>/...`, `root/val/<class>/...`, `root/test/<class>/...`.

Images of any size and mode are read with Pillow and converted to RGB, or to one gray channel when
every image is grayscale (a gray mode, or RGB with three equal channels). When all images share a size
a split's images are one uint8 (N, H, W, C) array, otherwise a list of (H, W, C) arrays. Without split
subfolders every image goes to the training split (val/test stay empty). Hidden files are ignored.

Each image's size is read from its header and checked before it is decoded (at most
`limits.MAX_IMAGE_PIXELS` pixels, and the whole dataset within `limits.MAX_DECODED_BYTES` and
`limits.MAX_EXPANSION`). Every folder listed and file opened goes through `roots.check_opened`, so
when loading is confined a class folder or image that links out of the data roots is refused.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from knowledge.datasets.base import ImageDataset, Split
from knowledge.datasets.limits import DecodeBudget, check_image_pixels, too_big_image
from knowledge.datasets.roots import check_opened
from knowledge.errors import DatasetError

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg")
SPLIT_DIRS: dict[str, str] = {
    "train": "train", "training": "train",
    "val": "val", "valid": "val", "validation": "val",
    "test": "test", "testing": "test",
}
_GRAY_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}
_IGNORED = {"thumbs.db", "desktop.ini"}


def _visible(path: Path) -> bool:
    return not path.name.startswith(".") and path.name.lower() not in _IGNORED


def _subdirs(path: Path) -> list[Path]:
    """The visible subfolders of `path`, named under `path` (listed after `check_opened`)."""
    real = check_opened(path)
    return sorted(path / p.name for p in real.iterdir() if p.is_dir() and _visible(p))


def _open_image(path: Path, budget: DecodeBudget):  # noqa: ANN202 - a PIL image, imported lazily
    """The image at `path`, opened lazily (header only) and checked against the limits; the caller
    closes it. PIL's own decompression-bomb warning or error becomes the same DatasetError."""
    from PIL import Image

    real = check_opened(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            im = Image.open(real)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise too_big_image(str(path)) from None
    try:
        width, height = im.size
        check_image_pixels(width, height, str(path))
        budget.add(width * height * (1 if im.mode in _GRAY_MODES else 3), real.stat().st_size)
    except BaseException:
        im.close()
        raise
    return im


def _read_image(path: Path, budget: DecodeBudget | None = None) -> np.ndarray:
    """One image as uint8 (H, W) when gray, (H, W, 3) otherwise; DatasetError naming the file.

    Its size is checked (`_open_image`) before any pixel is decoded; `budget` counts the dataset's
    decoded bytes so far (a fresh one when not given)."""
    budget = budget if budget is not None else DecodeBudget(str(path))
    try:
        with _open_image(path, budget) as im:
            im.load()
            if im.mode in _GRAY_MODES:
                if im.mode.startswith("I") or im.mode == "F":  # 16/32-bit gray: rescale to 8 bits
                    a = np.asarray(im, dtype=np.float64)
                    hi = a.max()
                    return np.rint(a * (255.0 / hi) if hi > 255 else a).clip(0, 255).astype(np.uint8)
                return np.asarray(im.convert("L"), dtype=np.uint8)
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except DatasetError:
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow raises many types for a malformed file
        raise DatasetError(f"corrupt or unreadable image ({type(exc).__name__}): {path}") from exc
    if np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]):
        return rgb[..., 0]
    return rgb


def _image_files(class_dir: Path) -> list[Path]:
    """The images under one class folder (recursively), sorted and named under `class_dir`; other
    visible files are an error. The folder and each file go through `check_opened`."""
    real = check_opened(class_dir)
    files = sorted(class_dir / p.relative_to(real) for p in real.rglob("*")
                   if p.is_file() and _visible(p)
                   and not any(part.startswith(".") for part in p.relative_to(real).parts))
    for f in files:
        check_opened(f)
        if f.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DatasetError(f"unsupported file type {f.suffix or '(no extension)'!r} "
                               f"(expected {', '.join(IMAGE_EXTENSIONS)}): {f}")
    return files


def _finish(arrays: list[np.ndarray], labels: list[int], gray: bool) -> Split:
    """Give every image a channel axis (1 when the whole dataset is gray, else 3) and stack them
    when they share a size."""
    if gray:
        imgs = [a[..., None] for a in arrays]
    else:
        imgs = [np.repeat(a[..., None], 3, axis=2) if a.ndim == 2 else a for a in arrays]
    same = len({a.shape for a in imgs}) == 1
    images: np.ndarray | list[np.ndarray] = np.stack(imgs) if same else imgs
    return Split(images=images, labels=np.asarray(labels, dtype=np.int64))


def load_folder(root: Path) -> ImageDataset:
    """Read an image-folder dataset. The dataset id is the resolved folder path."""
    from tqdm.auto import tqdm

    root = Path(root)
    top = _subdirs(root)
    if not top:
        raise DatasetError(f"no class subfolders (expected <folder>/<class>/<image>.png): {root}")
    split_named = {SPLIT_DIRS.get(d.name.lower()) for d in top}
    if None not in split_named:
        if "train" not in split_named:
            raise DatasetError(f"split folders found but no train/ folder: {root}")
        split_roots = {SPLIT_DIRS[d.name.lower()]: d for d in top}
    else:
        split_roots = {"train": root}

    per_split = {s: {c.name: _image_files(c) for c in _subdirs(d)} for s, d in split_roots.items()}
    for s, classes in per_split.items():
        for name, files in classes.items():
            if not files:
                log.warning("class folder %s has no images; ignored", split_roots[s] / name)
    class_names = sorted({c for classes in per_split.values() for c, files in classes.items() if files})
    total = sum(len(f) for classes in per_split.values() for f in classes.values())
    if total == 0:
        raise DatasetError(f"no images found (expected {', '.join(IMAGE_EXTENSIONS)} files in "
                           f"class subfolders): {root}")
    index = {c: i for i, c in enumerate(class_names)}

    raw: dict[str, tuple[list[np.ndarray], list[int]]] = {}
    budget = DecodeBudget(str(root))
    with tqdm(total=total, desc=f"reading {root.name}", unit="img", disable=total < 2000,
              leave=False) as bar:
        for s, classes in per_split.items():
            arrays: list[np.ndarray] = []
            labels: list[int] = []
            for cname, files in classes.items():
                for f in files:
                    arrays.append(_read_image(f, budget))
                    labels.append(index[cname])
                    bar.update()
            raw[s] = (arrays, labels)
    gray = all(a.ndim == 2 for arrays, _ in raw.values() for a in arrays)
    splits = {s: _finish(a, y, gray) for s, (a, y) in raw.items() if y}
    if "train" not in splits:
        raise DatasetError(f"the train split has no images: {root}")
    train = splits["train"]
    n_train_classes = len(np.unique(train.labels))
    return ImageDataset(
        id=str(root.resolve()),
        base=root.resolve().name,
        train=train,
        val=splits.get("val"),
        test=splits.get("test"),
        class_names=class_names,
        task="binary" if len(class_names) == 2 else ("multi-class" if n_train_classes > 1 else None),
        medical=True,
        extra={"source": "folder", "path": str(root.resolve())},
    )
