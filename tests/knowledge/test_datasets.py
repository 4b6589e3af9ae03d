"""knowledge.datasets: .npz files, image folders, named sources, variants and every bad input."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from knowledge.datasets import Variant, load_dataset, sources, stratified_indices
from knowledge.errors import DatasetError
from tests.helpers import shared_file


# ----------------------------------------------------------------------------- helpers
def make_npz(path: Path, counts=(30, 10), *, size=(6, 6), rgb=False, splits=("train", "val", "test"),
             labels_2d=True, seed=0, **overrides) -> Path:
    """A tiny MedMNIST-layout file: `counts` images per class in train, a few in val/test."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split in splits:
        c = counts if split == "train" else tuple(max(1, k // 5) for k in counts)
        y = np.repeat(np.arange(len(c)), c)
        shape = (len(y), *size, 3) if rgb else (len(y), *size)
        arrays[f"{split}_images"] = rng.integers(0, 256, shape, dtype=np.uint8)
        arrays[f"{split}_labels"] = (y[:, None] if labels_2d else y).astype(np.uint8)
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(path, **arrays)
    return path


def save_image(path: Path, size=(10, 8), mode="RGB", seed=0) -> Path:
    rng = np.random.default_rng(seed)
    w, h = size
    channels = {"RGB": 3, "L": 1}[mode]
    a = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a[..., 0] if channels == 1 else a, mode=mode).save(path)
    return path


def make_folder(root: Path, classes=("cat", "dog"), per_class=3, *, mode="RGB", ext=".png",
                sizes=None) -> Path:
    for ci, cname in enumerate(classes):
        for i in range(per_class):
            size = sizes[(ci * per_class + i) % len(sizes)] if sizes else (10, 8)
            save_image(root / cname / f"img{i}{ext}", size=size, mode=mode, seed=ci * 100 + i)
    return root


# ----------------------------------------------------------------------------- npz
def test_npz_gray_layout(tmp_path: Path) -> None:
    ds = load_dataset(make_npz(tmp_path / "toy.npz"))
    assert ds.train.images.shape == (40, 6, 6, 1) and ds.train.images.dtype == np.uint8
    assert ds.train.labels.shape == (40,) and ds.train.labels.dtype == np.int64
    assert len(ds.val) == 8 and len(ds.test) == 8
    assert ds.id == str((tmp_path / "toy.npz").resolve()) and ds.base == "toy"
    assert ds.task == "binary" and ds.variant is None and ds.modality is None
    mf = ds.meta_features()
    assert (mf.n_instances, mf.n_classes, mf.imbalance_ratio) == (40, 2, 3.0)
    assert (mf.height, mf.width, mf.channels) == (6, 6, 1)


def test_npz_rgb_flat_labels_and_float_images(tmp_path: Path) -> None:
    ds = load_dataset(make_npz(tmp_path / "rgb.npz", counts=(5, 5, 5), rgb=True, labels_2d=False))
    assert ds.train.images.shape == (15, 6, 6, 3) and ds.task == "multi-class" and ds.n_classes == 3
    floats = np.linspace(0, 1, 4 * 5 * 5).reshape(4, 5, 5)
    path = tmp_path / "float.npz"
    np.savez(path, train_images=floats, train_labels=np.array([0, 1, 0, 1]))
    ds = load_dataset(path)
    assert ds.train.images.dtype == np.uint8 and ds.train.images.max() == 255
    assert ds.val is None and ds.test is None


def test_npz_channels_first(tmp_path: Path) -> None:
    path = tmp_path / "chw.npz"
    np.savez(path, train_images=np.zeros((4, 3, 7, 5), np.uint8), train_labels=np.array([0, 1, 0, 1]))
    assert load_dataset(path).image_shape() == (7, 5, 3)


def test_npz_multilabel(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, (20, 4)).astype(np.uint8)
    path = tmp_path / "chestlike.npz"
    np.savez(path, train_images=rng.integers(0, 256, (20, 6, 6), dtype=np.uint8), train_labels=y)
    ds = load_dataset(path)
    assert ds.task == "multi-label" and ds.train.labels.shape == (20, 4) and ds.n_classes == 4
    mf = ds.meta_features()
    assert mf.task == "multi-label" and mf.n_instances == 20 and mf.n_classes == 4


def test_npz_medmnist_flag_name_fills_card(tmp_path: Path) -> None:
    ds = load_dataset(make_npz(tmp_path / "bloodmnist_64.npz", counts=(3,) * 8, rgb=True))
    assert ds.modality == "microscopy" and ds.task == "multi-class" and ds.base == "bloodmnist_64"
    assert len(ds.class_names) == 8 and ds.extra["medmnist_flag"] == "bloodmnist"
    assert ds.extra["size"] == 64
    ds = load_dataset(make_npz(tmp_path / "pneumoniamnist.npz"))
    assert (ds.modality, ds.task, ds.class_names) == ("x-ray", "binary", ["normal", "pneumonia"])


def test_modality_override(tmp_path: Path) -> None:
    path = make_npz(tmp_path / "pneumoniamnist.npz")
    assert load_dataset(path, modality="CT scan").modality == "ct"
    assert load_dataset(path).meta_features().modality == "x-ray"
    with pytest.raises(DatasetError, match="unknown modality 'sonar'.*ultrasound"):
        load_dataset(path, modality="sonar")


# ----------------------------------------------------------------------------- bad npz input
def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="dataset not found.*nope.npz"):
        load_dataset(tmp_path / "nope.npz")


def test_npz_missing_keys(tmp_path: Path) -> None:
    path = tmp_path / "nokeys.npz"
    np.savez(path, images=np.zeros((2, 3, 3)), labels=np.zeros(2))
    with pytest.raises(DatasetError, match=r"missing key\(s\) train_images, train_labels.*nokeys.npz"):
        load_dataset(path)
    path = make_npz(tmp_path / "half.npz", val_labels=None)
    with pytest.raises(DatasetError, match="val_images but not val_labels.*half.npz"):
        load_dataset(path)


def test_npz_length_mismatch(tmp_path: Path) -> None:
    path = make_npz(tmp_path / "mismatch.npz", train_labels=np.zeros(7, np.uint8))
    with pytest.raises(DatasetError, match="train_images has 40 images but train_labels has 7.*mismatch"):
        load_dataset(path)


def test_npz_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.npz"
    path.write_bytes(b"this is not a zip archive at all")
    with pytest.raises(DatasetError, match="not a readable .npz file.*corrupt.npz"):
        load_dataset(path)
    good = make_npz(tmp_path / "trunc.npz").read_bytes()
    (tmp_path / "trunc.npz").write_bytes(good[: len(good) // 2])
    with pytest.raises(DatasetError, match="trunc.npz"):
        load_dataset(tmp_path / "trunc.npz")


def test_npz_bad_arrays(tmp_path: Path) -> None:
    path = make_npz(tmp_path / "neg.npz", train_labels=-np.ones(40, np.int64))
    with pytest.raises(DatasetError, match="labels must not be negative.*neg.npz"):
        load_dataset(path)
    path = make_npz(tmp_path / "shape.npz", train_images=np.zeros((40, 5), np.uint8))
    with pytest.raises(DatasetError, match="images must be.*shape.npz"):
        load_dataset(path)
    path = make_npz(tmp_path / "big.npz", train_images=np.full((40, 4, 4), 1000, np.int32))
    with pytest.raises(DatasetError, match="0..255.*big.npz"):
        load_dataset(path)


def test_one_class_train_split(tmp_path: Path) -> None:
    path = make_npz(tmp_path / "single.npz", counts=(12,))
    with pytest.raises(DatasetError, match="only 1 class.*single.npz"):
        load_dataset(path)


def test_unsupported_extension(tmp_path: Path) -> None:
    path = tmp_path / "table.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match="unsupported dataset format '.csv'.*table.csv"):
        load_dataset(path)


def test_unknown_named_source() -> None:
    with pytest.raises(DatasetError, match="unknown dataset 'imagenet'.*medmnist:<flag>.*digits"):
        load_dataset("imagenet")
    with pytest.raises(DatasetError, match="unknown MedMNIST dataset 'foomnist'.*pneumoniamnist"):
        load_dataset("medmnist:foomnist")


def test_npz_header_checks_keep_every_supported_layout(tmp_path: Path) -> None:
    """The .npy headers are read before the arrays: Fortran order, float images, bool labels,
    extra keys and a member named without `.npy` still load as before."""
    import zipfile

    rng = np.random.default_rng(3)
    images = np.asfortranarray(rng.random((12, 5, 4), dtype=np.float32))
    labels = np.arange(12) % 2 == 0
    path = tmp_path / "layouts.npz"
    np.savez_compressed(path, train_images=images, train_labels=labels, notes=np.array(["x"]))
    ds = load_dataset(path)
    assert ds.train.images.shape == (12, 5, 4, 1) and list(np.bincount(ds.train.labels)) == [6, 6]
    assert np.array_equal(ds.train.images[..., 0], np.rint(images * 255).astype(np.uint8))
    bare = tmp_path / "bare.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bare, "w") as dst:
        for name in ("train_images.npy", "train_labels.npy"):
            dst.writestr(name.removesuffix(".npy") if "images" in name else name, src.read(name))
    assert np.array_equal(load_dataset(bare).train.images, ds.train.images)


def test_limits_let_real_datasets_through() -> None:
    """The decoding limits are above what real data needs (see knowledge.datasets.limits)."""
    from knowledge.datasets import limits

    pathmnist_224 = 107_180 * 224 * 224 * 3 + 107_180  # the largest MedMNIST+ file, decoded
    tissuemnist_224 = 236_386 * 224 * 224 + 236_386
    assert max(pathmnist_224, tissuemnist_224) < limits.MAX_DECODED_BYTES
    assert 236_386 * 28 * 28 < limits.FREE_DECODED_BYTES  # every 28 px file, whatever its compression
    assert 8000 * 8000 <= limits.MAX_IMAGE_PIXELS < 12_000 * 12_000
    from PIL import Image

    assert limits.MAX_IMAGE_PIXELS < Image.MAX_IMAGE_PIXELS  # ours is met before PIL's bomb check


def test_real_medmnist_file_is_within_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    """A real MedMNIST file (deflate ratio about 1.1) loads even when every byte counts."""
    from knowledge.datasets import limits

    monkeypatch.setattr(limits, "FREE_DECODED_BYTES", 0)
    monkeypatch.setattr(limits, "MAX_EXPANSION", 2)
    ds = load_dataset(shared_file("medmnist", "breastmnist.npz"))
    assert len(ds.train) == 546


def test_big_image_within_the_limit_loads(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "photos", per_class=2)
    Image.new("RGB", (4000, 3000), color=(10, 20, 30)).save(root / "cat" / "big.jpg")
    ds = load_dataset(root)
    assert len(ds.train) == 5 and isinstance(ds.train.images, list)


# ----------------------------------------------------------------------------- folders
def test_folder_rgb(tmp_path: Path) -> None:
    ds = load_dataset(make_folder(tmp_path / "pets", per_class=3))
    assert ds.train.images.shape == (6, 8, 10, 3) and ds.class_names == ["cat", "dog"]
    assert list(ds.train.labels) == [0, 0, 0, 1, 1, 1] and ds.base == "pets" and ds.val is None
    assert ds.meta_features().n_classes == 2


def test_folder_gray_and_mixed(tmp_path: Path) -> None:
    gray = load_dataset(make_folder(tmp_path / "gray", mode="L", ext=".jpg"))
    assert gray.image_shape() == (8, 10, 1)
    mixed = make_folder(tmp_path / "mixed", mode="L")
    save_image(mixed / "cat" / "colour.png", mode="RGB")
    ds = load_dataset(mixed)
    assert ds.image_shape() == (8, 10, 3) and len(ds.train) == 7
    # An RGB file whose three channels are equal counts as grayscale.
    gray_rgb = tmp_path / "grayrgb"
    for cname in ("a", "b"):
        a = np.random.default_rng(1).integers(0, 256, (5, 5), dtype=np.uint8)
        (gray_rgb / cname).mkdir(parents=True)
        Image.fromarray(np.stack([a, a, a], axis=2)).save(gray_rgb / cname / "x.png")
    assert load_dataset(gray_rgb).image_shape() == (5, 5, 1)


def test_folder_varied_sizes(tmp_path: Path) -> None:
    ds = load_dataset(make_folder(tmp_path / "sizes", per_class=3, sizes=[(10, 8), (20, 30), (12, 12)]))
    assert isinstance(ds.train.images, list) and len(ds.train.images) == 6
    assert all(im.dtype == np.uint8 and im.ndim == 3 for im in ds.train.images)
    assert ds.image_shape() == (12, 12, 3)  # median height and width


def test_folder_with_splits(tmp_path: Path) -> None:
    root = tmp_path / "split"
    make_folder(root / "train", classes=("a", "b", "c"), per_class=4)
    make_folder(root / "val", classes=("a", "b", "c"), per_class=1)
    make_folder(root / "test", classes=("a", "b", "c"), per_class=2)
    (root / ".DS_Store").write_bytes(b"junk")
    ds = load_dataset(root)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (12, 3, 6)
    assert ds.class_names == ["a", "b", "c"] and list(ds.test.labels) == [0, 0, 1, 1, 2, 2]


def test_folder_errors(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no class subfolders.*empty"):
        load_dataset(tmp_path / "empty")
    (tmp_path / "hollow" / "a").mkdir(parents=True)
    (tmp_path / "hollow" / "b").mkdir(parents=True)
    with pytest.raises(DatasetError, match="no images found.*hollow"):
        load_dataset(tmp_path / "hollow")
    with pytest.raises(DatasetError, match="only 1 class.*one"):
        load_dataset(make_folder(tmp_path / "one", classes=("only",)))
    bad = make_folder(tmp_path / "bad")
    (bad / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(DatasetError, match="corrupt or unreadable image.*broken.png"):
        load_dataset(bad)
    notes = make_folder(tmp_path / "notes")
    (notes / "cat" / "readme.txt").write_text("hello")
    with pytest.raises(DatasetError, match="unsupported file type '.txt'.*readme.txt"):
        load_dataset(notes)
    fake = make_folder(tmp_path / "fake")
    (fake / "cat" / "fake.jpg").write_text("not a jpeg")
    with pytest.raises(DatasetError, match="corrupt or unreadable image.*fake.jpg"):
        load_dataset(fake)


# ----------------------------------------------------------------------------- real MedMNIST
def test_pneumoniamnist_meta_features() -> None:
    path = shared_file("medmnist", "pneumoniamnist.npz")
    ds = load_dataset(path)
    mf = ds.meta_features()
    assert (mf.n_instances, mf.n_classes) == (4708, 2)
    assert mf.imbalance_ratio == pytest.approx(2.878, abs=5e-4)
    assert mf.class_entropy == pytest.approx(0.8235, abs=1e-4)
    assert (mf.height, mf.width, mf.channels, mf.modality) == (28, 28, 1, "x-ray")
    assert (len(ds.val), len(ds.test)) == (524, 624)


def test_medmnist_named_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = shared_file("medmnist", "pneumoniamnist.npz")
    data = tmp_path / "data"
    data.mkdir()
    (data / "pneumoniamnist.npz").symlink_to(src)
    monkeypatch.setenv("METALLMIX_DATA", str(data))
    ds = load_dataset("medmnist:pneumoniamnist")
    assert ds.id == "medmnist:pneumoniamnist" and ds.base == "pneumoniamnist"
    assert ds.modality == "x-ray" and len(ds.train) == 4708
    v = load_dataset("medmnist:pneumoniamnist?n=100&imbalance=0.03")
    assert v.id == "medmnist:pneumoniamnist?imbalance=0.03&n=100&seed=0"
    assert len(v.train) == 100 and v.meta_features().imbalance_ratio >= 10
    assert len(v.val) == 524


def test_medmnist_missing_file_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fail(flag, size, root):  # the real download needs internet; tests have none
        calls.append((flag, size, root))
        raise RuntimeError("offline")

    monkeypatch.setattr(sources, "download_medmnist", fail)
    monkeypatch.setenv("METALLMIX_DATA", str(tmp_path / "data"))
    with pytest.raises(DatasetError, match=r"bloodmnist_64.npz .*could not be downloaded.*"
                                           + re.escape(str(tmp_path / "data" / "bloodmnist_64.npz"))):
        load_dataset("medmnist:bloodmnist_64")
    assert calls == [("bloodmnist", 64, tmp_path / "data")]


# ----------------------------------------------------------------------------- built-in sources
def test_digits_source() -> None:
    ds = load_dataset("digits")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (1257, 180, 360)
    assert ds.image_shape() == (8, 8, 1) and ds.train.images.max() == 255
    assert ds.medical is False and ds.modality == "other" and ds.base == "digits"
    # stratified: every class keeps its share in each split
    for split in (ds.train, ds.val, ds.test):
        counts = np.bincount(split.labels, minlength=10)
        assert counts.min() >= 0.9 * len(split) / 10 - 1
    again = load_dataset("digits")
    assert np.array_equal(again.train.images, ds.train.images)


def test_mnist_5k_source() -> None:
    ds = load_dataset("mnist-5k")
    assert len(ds.train) + len(ds.val) + len(ds.test) == 5000
    assert (len(ds.train), len(ds.val), len(ds.test)) == (3500, 500, 1000)
    assert ds.image_shape() == (28, 28, 1) and ds.n_classes == 10
    assert ds.medical is False and ds.modality == "other"
    assert set(np.bincount(ds.train.labels).tolist()) == {350}


def test_fashion_mnist_source() -> None:
    if not (sources.DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian package dataset-fashion-mnist not installed")
    ds = load_dataset("fashion-mnist")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (54000, 6000, 10000)
    assert ds.image_shape() == (28, 28, 1) and ds.modality == "natural" and not ds.medical
    assert ds.class_names[0] == "T-shirt/top" and set(np.bincount(ds.val.labels)) == {600}


def test_fashion_mnist_not_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "DEBIAN_FASHION_MNIST", tmp_path / "none")
    with pytest.raises(DatasetError, match="fashion-mnist is not installed.*dataset-fashion-mnist"):
        load_dataset("fashion-mnist")


def _write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_fashion_mnist_from_data_dir_idx(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "data" / "fashion-mnist"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 100), ("t10k", 20)):
        _write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 4, 4)))
        _write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    monkeypatch.setenv("METALLMIX_DATA", str(tmp_path / "data"))
    ds = load_dataset("fashion-mnist")
    assert (len(ds.train), len(ds.val), len(ds.test)) == (90, 10, 20)
    assert ds.image_shape() == (4, 4, 1) and sorted(ds.val.labels.tolist()) == list(range(10))
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x01\x02\x03\x04"))
    with pytest.raises(DatasetError, match="not an IDX file.*t10k-labels"):
        load_dataset("fashion-mnist")


# ----------------------------------------------------------------------------- variants
def test_variant_canonical_id_and_determinism(tmp_path: Path) -> None:
    a = load_dataset("digits?seed=0&n=200")
    b = load_dataset("digits?n=200")
    assert a.id == b.id == "digits?n=200&seed=0" and a.variant == "n=200&seed=0" and a.base == "digits"
    assert np.array_equal(a.train.images, b.train.images)
    c = load_dataset("digits?n=200&seed=1")
    assert not np.array_equal(a.train.labels, c.train.labels) or not np.array_equal(
        a.train.images, c.train.images)
    again = load_dataset(a.id)
    assert again.id == a.id and np.array_equal(again.train.images, a.train.images)
    assert Variant.parse("imbalance=0.20&classes=3,1,3&frac=.5").canonical() == \
        "classes=1,3&frac=0.5&imbalance=0.2&seed=0"


def test_variant_stratified_and_splits_untouched() -> None:
    full = load_dataset("digits")
    ds = load_dataset("digits?frac=0.3&seed=1")
    assert len(ds.train) == round(0.3 * len(full.train))
    share_full = np.bincount(full.train.labels) / len(full.train)
    share = np.bincount(ds.train.labels) / len(ds.train)
    assert np.abs(share - share_full).max() < 0.01
    assert np.array_equal(ds.val.labels, full.val.labels) and np.array_equal(ds.test.images, full.test.images)
    assert ds.extra["variant_params"] == {"frac": 0.3, "seed": 1} and ds.extra["n_train_full"] == 1257


def test_variant_reaches_strong_imbalance_with_100_images() -> None:
    ds = load_dataset("digits?imbalance=0.05&n=100")
    mf = ds.meta_features()
    assert mf.n_instances == 100 and mf.n_classes == 10 and mf.imbalance_ratio >= 10
    counts = np.bincount(ds.train.labels)
    assert counts[1::2].max() < counts[0::2].min()  # classes 1,3,5,... were shrunk
    chosen = load_dataset("digits?imbalance=0.1&classes=2")
    counts = np.bincount(chosen.train.labels)
    assert counts[2] == round(0.1 * np.bincount(load_dataset("digits").train.labels)[2])


def test_variant_on_npz_path(tmp_path: Path) -> None:
    path = make_npz(tmp_path / "x.npz", counts=(60, 40))
    ds = load_dataset(f"{path}?n=20")
    assert ds.id == f"{path.resolve()}?n=20&seed=0" and ds.base == "x"
    assert np.bincount(ds.train.labels).tolist() == [12, 8]
    assert np.array_equal(load_dataset(ds.id).train.images, ds.train.images)


def test_variant_on_folder_with_varied_sizes(tmp_path: Path) -> None:
    root = make_folder(tmp_path / "f", per_class=4, sizes=[(10, 8), (20, 30)])
    ds = load_dataset(f"{root}?n=4&seed=2")
    assert isinstance(ds.train.images, list) and len(ds.train.images) == 4
    assert np.bincount(ds.train.labels).tolist() == [2, 2]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("n=5", r"n=5 is too small: need at least 10 images \(one per class\)"),
        ("frac=0.001", r"frac=0.001 \(1 images\) is too small"),
        ("n=99999", "n=99999 exceeds the 1257 training images"),
        ("frac=0", r"frac=0 must be in \(0, 1\]"),
        ("frac=1.5", r"frac=1.5 must be in \(0, 1\]"),
        ("imbalance=0", r"imbalance=0 must be in \(0, 1\]"),
        ("imbalance=2", r"imbalance=2 must be in \(0, 1\]"),
        ("size=3", "unknown variant key 'size'; allowed: n, frac, imbalance, classes, seed"),
        ("n=10&frac=0.5", "n or frac, not both"),
        ("n=ten", "n='ten' is not a whole number"),
        ("classes=1", "classes= only applies with imbalance="),
        ("imbalance=0.5&classes=42", r"classes \[42\] are not in the training split"),
        ("imbalance=0.5&classes=0,1,2,3,4,5,6,7,8,9", "at least one class at full size"),
        ("n=20&n=30", "given twice"),
        ("n", "malformed variant query"),
    ],
)
def test_variant_errors(query: str, message: str) -> None:
    with pytest.raises(DatasetError, match=message) as info:
        load_dataset(f"digits?{query}")
    assert "digits" in str(info.value) and "\n" not in str(info.value)


def test_stratified_indices_keep_every_class() -> None:
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], [1000, 10, 1])
    idx = stratified_indices(labels, 20, rng)
    assert len(idx) == 20 and len(set(idx.tolist())) == 20
    assert np.bincount(labels[idx]).tolist() == [18, 1, 1]
    with pytest.raises(ValueError):
        stratified_indices(labels, 2, rng)


def test_variant_multilabel_subsample_and_imbalance_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "ml.npz"
    np.savez(path, train_images=rng.integers(0, 256, (30, 4, 4), dtype=np.uint8),
             train_labels=rng.integers(0, 2, (30, 3)))
    assert len(load_dataset(f"{path}?n=10").train) == 10
    with pytest.raises(DatasetError, match="not supported for multi-label"):
        load_dataset(f"{path}?imbalance=0.5")


def test_path_with_question_mark_is_not_split(tmp_path: Path) -> None:
    odd = make_npz(tmp_path / "odd?n=5.npz")
    ds = load_dataset(str(odd))
    assert ds.variant is None and ds.base == "odd?n=5"
