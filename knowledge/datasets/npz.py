"""MedMNIST-layout `.npz` files: `train_images`, `train_labels` and optionally `val_*`, `test_*`.

Images may be gray (N, H, W), channels-last (N, H, W, C) or channels-first (N, C, H, W), uint8 or
float in [0, 1]; labels (N,), (N, 1) or multi-label 0/1 (N, L). Everything becomes uint8 (N, H, W, C)
images and int64 labels. A file named after a MedMNIST flag (`pneumoniamnist.npz`,
`bloodmnist_64.npz`) gets its modality, task and class names from the MedMNIST dataset card.

The archive is read with `zipfile`, never unpickling: the `.npy` header of every array it will read
is checked first (dtype, a shape its data can hold, the total against `knowledge.datasets.limits`),
so a small file that declares a huge array is refused before anything is allocated.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import re
import zipfile
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

import numpy as np

from knowledge.datasets.base import ImageDataset, Split
from knowledge.datasets.limits import DecodeBudget, human_bytes
from knowledge.datasets.medmnist_info import MEDMNIST_MODALITY, TASK_MAP, medmnist_info
from knowledge.datasets.roots import check_opened
from knowledge.errors import DatasetError

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")
_FLAG_RE = re.compile(r"^(?P<flag>[a-z]+mnist)(?:_(?P<size>28|64|128|224))?$")


# ----------------------------------------------------------------------------- array checks
def as_uint8_images(arr: np.ndarray, where: str) -> np.ndarray:
    """Images as uint8 (N, H, W, C) with C in 1..4; `where` names the file in errors."""
    a = np.asarray(arr)
    if a.ndim == 3:
        a = a[..., None]
    elif a.ndim == 4 and a.shape[-1] not in (1, 3, 4) and a.shape[1] in (1, 3, 4):
        a = np.moveaxis(a, 1, -1)  # channels-first -> channels-last
    if a.ndim != 4 or a.shape[-1] not in (1, 3, 4) or 0 in a.shape[1:]:
        raise DatasetError(
            f"images must be (N, H, W) or (N, H, W, C) with C in 1/3/4, got shape {a.shape}: {where}"
        )
    if a.dtype == np.uint8:
        return a
    if a.dtype == np.bool_:
        return a.astype(np.uint8) * 255
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise DatasetError(f"images have unsupported dtype {a.dtype}: {where}")
    if a.size and not np.isfinite(a).all():
        raise DatasetError(f"images contain NaN or infinite values: {where}")
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if lo < 0:
        raise DatasetError(f"images have negative pixel values (min {lo:g}): {where}")
    if np.issubdtype(a.dtype, np.floating) and hi <= 1.0:
        a = a * 255.0
    elif hi > 255:
        raise DatasetError(f"images exceed the 0..255 range (max {hi:g}); expected 8-bit: {where}")
    return np.rint(a).astype(np.uint8)


def as_labels(arr: np.ndarray, where: str) -> np.ndarray:
    """Labels as int64: (N,) class ids, or (N, L) 0/1 when there are several label columns."""
    y = np.asarray(arr)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim not in (1, 2):
        raise DatasetError(f"labels must be (N,), (N, 1) or (N, L), got shape {y.shape}: {where}")
    if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)
            or y.dtype == np.bool_):
        raise DatasetError(f"labels must be integers, got dtype {y.dtype}: {where}")
    if y.size and (not np.isfinite(y).all() or not np.array_equal(y, np.round(y))):
        raise DatasetError(f"labels must be whole numbers: {where}")
    y = y.astype(np.int64)
    if y.size and y.min() < 0:
        raise DatasetError(f"labels must not be negative (min {int(y.min())}): {where}")
    if y.ndim == 2 and y.size and y.max() > 1:
        raise DatasetError(f"multi-label labels (N, L) must be 0/1: {where}")
    return y


def infer_task(labels: np.ndarray) -> str:
    """'multi-label' for (N, L) labels, else 'binary' or 'multi-class' from the distinct labels."""
    if labels.ndim == 2:
        return "multi-label"
    return "binary" if len(np.unique(labels)) == 2 else "multi-class"


# ----------------------------------------------------------------------------- MedMNIST cards
@lru_cache(maxsize=1)
def _medmnist_cards() -> dict:
    """The `medmnist` package's INFO dict, read from `medmnist/info.py` alone: importing the
    `medmnist` package itself pulls in torch (~2 s), which `metallmix analyze` does not need."""
    spec = importlib.util.find_spec("medmnist")
    if spec is None or not spec.submodule_search_locations:
        return {}
    info_py = Path(next(iter(spec.submodule_search_locations))) / "info.py"
    try:
        mod_spec = importlib.util.spec_from_file_location("_metallmix_medmnist_info", info_py)
        module = importlib.util.module_from_spec(mod_spec)
        mod_spec.loader.exec_module(module)  # type: ignore[union-attr]
        return dict(module.INFO)
    except Exception:  # noqa: BLE001 - fall back to the regular (slow) import
        return {flag: medmnist_info(flag) for flag in MEDMNIST_MODALITY}


def parse_medmnist_name(name: str) -> tuple[str, int | None] | None:
    """('bloodmnist', 64) for 'bloodmnist_64', ('pneumoniamnist', None) for 'pneumoniamnist',
    None when the name is not a 2D MedMNIST flag."""
    m = _FLAG_RE.match(name.lower())
    if not m or m["flag"] not in MEDMNIST_MODALITY:
        return None
    return m["flag"], int(m["size"]) if m["size"] else None


def medmnist_card(flag: str) -> dict:
    """Modality, task type, class names and download URLs of a 2D MedMNIST flag."""
    info = dict(_medmnist_cards().get(flag, {}))
    labels = info.get("label") or {}
    info["modality"] = MEDMNIST_MODALITY[flag]
    info["task_type"] = TASK_MAP.get(info.get("task", ""), None)
    info["class_names"] = [labels[k] for k in sorted(labels, key=int)] if labels else None
    return info


# ----------------------------------------------------------------------------- reading
def _archive(path: Path, where: str) -> tuple[BinaryIO, zipfile.ZipFile]:
    """The open file and its zip archive (after `check_opened`: inside the roots when confined)."""
    real = check_opened(path)
    try:
        fh = open(real, "rb")  # noqa: SIM115 - closed by load_npz
    except OSError as exc:
        raise DatasetError(f"not a readable .npz file ({type(exc).__name__}): {where}") from exc
    try:
        if fh.read(len(np.lib.format.MAGIC_PREFIX)) == np.lib.format.MAGIC_PREFIX:
            raise DatasetError(f"not an .npz archive (a single .npy array?): {where}")
        fh.seek(0)
        return fh, zipfile.ZipFile(fh)
    except DatasetError:
        fh.close()
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile raises many types for a bad file
        fh.close()
        raise DatasetError(f"not a readable .npz file ({type(exc).__name__}): {where}") from exc


def _member(zf: zipfile.ZipFile, key: str) -> zipfile.ZipInfo | None:
    """The member `np.load` would read for `key`: one named `key`, else `key.npy`."""
    names = set(zf.namelist())
    for name in (key, f"{key}.npy"):
        if name in names:
            return zf.getinfo(name)
    return None


def _read_header(zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str,
                 where: str) -> tuple[tuple[int, ...], np.dtype, int]:
    """(shape, dtype, header length) a member's .npy header declares; reads no array data."""
    fmt = np.lib.format
    try:
        with zf.open(info) as fp:
            try:
                version = fmt.read_magic(fp)
            except ValueError:
                raise DatasetError(f"npz member {key} is not a .npy array: {where}") from None
            if version not in ((1, 0), (2, 0)):
                raise DatasetError(f"npz member {key} has unsupported .npy version "
                                   f"{version[0]}.{version[1]}: {where}")
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _fortran, dtype = read(fp)
            return tuple(shape), dtype, fp.tell()
    except DatasetError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile/numpy errors for a damaged header
        raise DatasetError(f"corrupt array {key} ({type(exc).__name__}): {where}") from exc


def _declared_bytes(zf: zipfile.ZipFile, info: zipfile.ZipInfo, key: str, where: str) -> int:
    """Bytes the member's array takes in memory, from its header; refuses object or structured
    dtypes and a shape the member's data cannot hold (a crafted header), before reading any data."""
    shape, dtype, header_len = _read_header(zf, info, key, where)
    if dtype.names is not None or dtype.subdtype is not None or dtype.kind not in "biuf":
        raise DatasetError(f"array {key} has unsupported dtype {dtype} (expected integers, floats "
                           f"or booleans): {where}")
    if any(d < 0 for d in shape):
        raise DatasetError(f"corrupt array {key} (negative shape {shape}): {where}")
    nbytes = math.prod(shape) * dtype.itemsize
    held = info.file_size - header_len
    if nbytes > held:
        raise DatasetError(f"array {key} declares shape {shape} ({human_bytes(nbytes)}) but holds "
                           f"{human_bytes(max(held, 0))} (truncated or crafted): {where}")
    return nbytes


def _read_array(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    """One member's array (its header already checked); never unpickles."""
    with zf.open(info) as fp:
        return np.lib.format.read_array(fp, allow_pickle=False)


def _split_members(zf: zipfile.ZipFile, where: str) -> dict[str, tuple[zipfile.ZipInfo, zipfile.ZipInfo]]:
    """split -> (images member, labels member), for the splits the archive has."""
    keys = sorted({n[:-4] if n.endswith(".npy") else n for n in zf.namelist()})
    missing = {"train_images", "train_labels"} - set(keys)
    if missing:
        raise DatasetError(f"npz is missing key(s) {', '.join(sorted(missing))} "
                           f"(has: {', '.join(keys) or 'nothing'}): {where}")
    out: dict[str, tuple[zipfile.ZipInfo, zipfile.ZipInfo]] = {}
    for name in SPLITS:
        ki, kl = f"{name}_images", f"{name}_labels"
        mi, ml = _member(zf, ki), _member(zf, kl)
        if mi is None and ml is None:
            continue
        if mi is None or ml is None:
            have, lack = (kl, ki) if mi is None else (ki, kl)
            raise DatasetError(f"npz has {have} but not {lack}: {where}")
        out[name] = (mi, ml)
    return out


def _check_budget(zf: zipfile.ZipFile, members: dict[str, tuple[zipfile.ZipInfo, zipfile.ZipInfo]],
                  on_disk: int, where: str) -> None:
    """Refuse the archive when the arrays it declares would decode over the limits (see limits)."""
    decoded = sum(_declared_bytes(zf, info, key, where)
                  for name, infos in members.items()
                  for info, key in zip(infos, (f"{name}_images", f"{name}_labels")))
    DecodeBudget(where).add(decoded, on_disk)


def _read_splits(zf: zipfile.ZipFile, members: dict[str, tuple[zipfile.ZipInfo, zipfile.ZipInfo]],
                 where: str) -> dict[str, Split]:
    """Every split's images and labels, checked and converted (see as_uint8_images, as_labels)."""
    splits: dict[str, Split] = {}
    for name, (mi, ml) in members.items():
        ki, kl = f"{name}_images", f"{name}_labels"
        try:
            raw_images, raw_labels = _read_array(zf, mi), _read_array(zf, ml)
        except Exception as exc:  # noqa: BLE001 - zipfile/numpy errors for a damaged file
            raise DatasetError(f"corrupt array {ki}/{kl} ({type(exc).__name__}): {where}") from exc
        images = as_uint8_images(raw_images, f"{where} [{ki}]")
        labels = as_labels(raw_labels, f"{where} [{kl}]")
        if len(images) != len(labels):
            raise DatasetError(f"{ki} has {len(images)} images but {kl} has {len(labels)} "
                               f"labels: {where}")
        splits[name] = Split(images=images, labels=labels)
    return splits


# ----------------------------------------------------------------------------- loader
def load_npz(path: Path) -> ImageDataset:
    """Read a MedMNIST-layout `.npz` file (see the module docstring). The dataset id is the
    resolved path. The file is opened once: the headers checked are those of the arrays read."""
    path = Path(path)
    where = str(path)
    fh, zf = _archive(path, where)
    with fh, zf:
        members = _split_members(zf, where)
        _check_budget(zf, members, os.fstat(fh.fileno()).st_size, where)
        splits = _read_splits(zf, members, where)

    stem = path.name[: -len(".npz")] if path.name.lower().endswith(".npz") else path.stem
    train = splits["train"]
    ds = ImageDataset(
        id=str(path.resolve()),
        base=stem,
        train=train,
        val=splits.get("val"),
        test=splits.get("test"),
        task=infer_task(train.labels),
        medical=True,
        extra={"source": "npz", "path": str(path.resolve())},
    )
    parsed = parse_medmnist_name(stem)
    if parsed:
        flag, size = parsed
        card = medmnist_card(flag)
        ds.modality = card["modality"]
        ds.task = card["task_type"] or ds.task
        names = card["class_names"]
        n_found = (train.labels.shape[1] if train.labels.ndim == 2
                   else int(train.labels.max()) + 1 if train.labels.size else 0)
        if names and (len(names) == n_found if train.labels.ndim == 2 else n_found <= len(names)):
            ds.class_names = names
        else:
            log.warning("%s: labels do not match the MedMNIST %s class list; names dropped", where, flag)
        ds.extra.update(medmnist_flag=flag, size=size or 28)
        log.debug("%s: MedMNIST %s (%s, %s)", where, flag, ds.modality, ds.task)
    return ds
