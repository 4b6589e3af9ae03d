"""Hostile dataset files: small files that declare huge arrays or images (decoding limits), and
links inside a dataset that lead out of the allowed data roots (every opened file is checked)."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import sys
import tracemalloc
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from knowledge.datasets import limits, load_dataset
from knowledge.datasets.roots import ENV_VAR
from knowledge.errors import DatasetError
from tests.helpers import REPO
from ui.cli import main

RNG = np.random.default_rng(0)


# ----------------------------------------------------------------------------- crafted files
def npy_bytes(array: np.ndarray) -> bytes:
    """`array` in the .npy format."""
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def npy_declaring(shape: tuple[int, ...], dtype: str = "|u1", data: bytes = b"\0" * 64) -> bytes:
    """A .npy header that declares `shape` followed by only `data`: a crafted file."""
    header = {"descr": dtype, "fortran_order": False, "shape": shape}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    return buf.getvalue() + data


def npz_of(path: Path, members: dict[str, bytes]) -> Path:
    """A zip archive of raw members (names as given)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def good_members(n: int = 10) -> dict[str, bytes]:
    """train_images/train_labels of a valid two-class dataset, as .npy members."""
    return {"train_images.npy": npy_bytes(RNG.integers(0, 256, (n, 4, 4), dtype=np.uint8)),
            "train_labels.npy": npy_bytes(np.arange(n) % 2)}


def png_declaring(path: Path, width: int, height: int) -> Path:
    """A tiny real PNG whose IHDR is rewritten to declare `width` x `height` (CRC recomputed)."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes(data))
    return path


def folder_with(root: Path, bad: Path | None = None) -> Path:
    """Two class folders of small random PNGs; `bad` (a file) is copied into the first one."""
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(RNG.integers(0, 256, (6, 5), dtype=np.uint8)).save(root / c / f"{i}.png")
    if bad is not None:
        shutil.copyfile(bad, root / "a" / bad.name)
    return root


def cli_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The one `error:` line `metallmix` prints, after checking exit code 2 and nothing else."""
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("error: ")
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
    return captured.err.strip()


# ----------------------------------------------------------------------------- .npz
def test_npz_header_declaring_a_huge_array_is_refused_before_allocating(tmp_path: Path) -> None:
    path = npz_of(tmp_path / "liar.npz", {**good_members(),
                                          "train_images.npy": npy_declaring((100_000, 224, 224, 3))})
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match=r"train_images declares shape \(100000, 224, 224, 3\) "
                                               r"\(14 GiB\) but holds 64 B .*liar\.npz$"):
            load_dataset(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 2**20


def test_npz_of_zeros_decoding_far_beyond_its_size_is_refused(tmp_path: Path, monkeypatch) -> None:
    """The reported case (750 KB of zeros -> 1 GB), scaled down: the free allowance is lowered."""
    monkeypatch.setattr(limits, "FREE_DECODED_BYTES", 2**20)
    path = tmp_path / "zeros.npz"
    np.savez_compressed(path, train_images=np.zeros((500, 128, 128), np.uint8),
                        train_labels=np.arange(500) % 2)
    assert path.stat().st_size < 200_000  # 8 MB of pixels in a small file
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match=r"decodes to 7\.82 MiB from [\d.]+ KiB on disk, over the "
                                               r"limit of 100x its size .*zeros\.npz$"):
            load_dataset(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 2**20  # nothing was decoded


def test_npz_over_the_total_limit_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(limits, "MAX_DECODED_BYTES", 2**20)
    path = tmp_path / "big.npz"
    np.savez(path, train_images=RNG.integers(0, 256, (100, 100, 110), dtype=np.uint8),
             train_labels=np.arange(100) % 2)
    with pytest.raises(DatasetError, match=r"decodes to 1\.05 MiB, over the limit of 1 MiB: .*big\.npz"):
        load_dataset(path)


def test_npz_object_and_odd_members_are_refused_without_unpickling(tmp_path: Path) -> None:
    pickled = npz_of(tmp_path / "pickled.npz", {
        **good_members(), "train_images.npy": npy_bytes(np.array([{"x": 1}, None], dtype=object))})
    with pytest.raises(DatasetError, match=r"train_images has unsupported dtype object .*pickled\.npz"):
        load_dataset(pickled)
    text = npz_of(tmp_path / "text.npz", {**good_members(), "train_images.npy": npy_bytes(np.array(["a"]))})
    with pytest.raises(DatasetError, match=r"train_images has unsupported dtype <U1"):
        load_dataset(text)
    raw = npz_of(tmp_path / "raw.npz", {"train_images": b"\0" * 100_000,
                                        "train_labels.npy": good_members()["train_labels.npy"]})
    with pytest.raises(DatasetError, match=r"npz member train_images is not a \.npy array: .*raw\.npz"):
        load_dataset(raw)
    negative = npz_of(tmp_path / "neg.npz", {**good_members(), "train_images.npy": npy_declaring((-1, 4))})
    with pytest.raises(DatasetError, match=r"corrupt array train_images .*neg\.npz"):
        load_dataset(negative)
    single = tmp_path / "single.npz"
    single.write_bytes(npy_declaring((10**9, 10**9)))
    with pytest.raises(DatasetError, match=r"not an \.npz archive \(a single \.npy array\?\)"):
        load_dataset(single)


def test_cli_prints_one_error_line_for_a_crafted_npz(tmp_path: Path, capsys) -> None:
    crafted = {**good_members(), "train_images.npy": npy_declaring((10**6, 10**6))}
    path = npz_of(tmp_path / "liar.npz", crafted)
    line = cli_error(["analyze", str(path)], capsys)
    assert line.startswith("error: array train_images declares shape (1000000, 1000000)")
    assert line.endswith(str(path))


# ----------------------------------------------------------------------------- images
@pytest.mark.parametrize(("width", "height"), [(100_000, 100_000), (12_000, 12_000), (9_000, 9_000)])
def test_png_declaring_too_many_pixels_is_refused_before_decoding(tmp_path: Path, width: int,
                                                                   height: int) -> None:
    """Over PIL's error threshold, between its warning and error thresholds, and just over ours."""
    root = folder_with(tmp_path / "pets", png_declaring(tmp_path / "bomb.png", width, height))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not even PIL's DecompressionBombWarning gets out
        with pytest.raises(DatasetError) as refused:
            load_dataset(root)
    assert str(refused.value).endswith(f"over the limit of 67,108,864 pixels per image: "
                                       f"{root / 'a' / 'bomb.png'}") and "\n" not in str(refused.value)


def test_compressible_big_png_is_refused_with_the_limit_lowered(tmp_path: Path, monkeypatch) -> None:
    """A real (decodable) PNG over the limit: the size is read from its header, not by decoding."""
    monkeypatch.setattr(limits, "MAX_IMAGE_PIXELS", 1000 * 1000)
    big = tmp_path / "big.png"
    Image.new("L", (1500, 1000)).save(big)
    root = folder_with(tmp_path / "pets", big)
    with pytest.raises(DatasetError, match=r"image is 1500 x 1000 pixels, over the limit of 1,000,000 "
                                           r"pixels per image: .*big\.png$"):
        load_dataset(root)


def test_folder_of_blank_images_decoding_far_beyond_its_size_is_refused(tmp_path: Path,
                                                                        monkeypatch) -> None:
    monkeypatch.setattr(limits, "FREE_DECODED_BYTES", 2**20)
    root = tmp_path / "blank"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (1000, 1000)).save(root / c / f"{i}.png")
    with pytest.raises(DatasetError, match=r"decodes to .* on disk, over the limit of 100x its size "
                                           r".*blank$"):
        load_dataset(root)


def test_cli_bomb_png_is_one_error_line_exit_2_and_leaves_nothing(tmp_path: Path) -> None:
    root = folder_with(tmp_path / "pets", png_declaring(tmp_path / "bomb.png", 100_000, 100_000))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    exe = shutil.which("metallmix")
    cmd = [exe] if exe else [sys.executable, "-c", "import sys; from ui.cli import main; sys.exit(main())"]
    proc = subprocess.run([*cmd, "analyze", str(root)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(scratch)})
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: image is over the limit of 67,108,864 pixels per image: "
                                   f"{root / 'a' / 'bomb.png'}")
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert list(scratch.iterdir()) == []  # no temporary files
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == [*before, Path("tmp")]


# ----------------------------------------------------------------------------- links out of the roots
@pytest.fixture
def roots(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(the only allowed data root, a folder outside it holding a 'secret' class of images)."""
    data, outside = tmp_path / "data", tmp_path / "outside"
    data.mkdir()
    folder_with(outside)
    monkeypatch.setenv(ENV_VAR, str(data))
    return data, outside


def test_class_folder_linking_out_of_the_roots_is_refused(roots: tuple[Path, Path]) -> None:
    from tools.data import analyze_dataset

    data, outside = roots
    root = folder_with(data / "pets")
    (root / "secret").symlink_to(outside / "a", target_is_directory=True)
    for load in (lambda: load_dataset(root, confine=True), lambda: analyze_dataset(str(root))):
        with pytest.raises(DatasetError) as refused:
            load()
        text = str(refused.value)
        assert text.startswith(f"dataset file {root / 'secret'} is outside the allowed data roots")
        assert str(outside) not in text and "\n" not in text  # neither the target nor the roots


def test_split_folder_and_single_image_linking_out_are_refused(roots: tuple[Path, Path]) -> None:
    data, outside = roots
    split = data / "split"
    folder_with(split / "train")
    (split / "test").symlink_to(outside, target_is_directory=True)
    with pytest.raises(DatasetError, match=f"dataset file {split / 'test'} is outside"):
        load_dataset(split, confine=True)
    one = folder_with(data / "one")
    (one / "b" / "stolen.png").symlink_to(outside / "a" / "0.png")
    with pytest.raises(DatasetError, match=f"dataset file {one / 'b' / 'stolen.png'} is outside"):
        load_dataset(one, confine=True)
    (one / "b" / "stolen.png").unlink()
    (one / "b" / "notes.txt").symlink_to("/etc/passwd")  # refused as a link, not as a .txt
    with pytest.raises(DatasetError, match=r"notes\.txt is outside the allowed data roots"):
        load_dataset(one, confine=True)


def test_npz_linking_out_is_refused_and_links_inside_the_roots_are_fine(roots: tuple[Path, Path]) -> None:
    data, outside = roots
    np.savez(outside / "x.npz", train_images=np.zeros((4, 3, 3), np.uint8), train_labels=np.arange(4) % 2)
    (data / "x.npz").symlink_to(outside / "x.npz")
    with pytest.raises(DatasetError, match=f"{data / 'x.npz'} is outside the allowed data roots"):
        load_dataset(data / "x.npz", confine=True)
    shutil.copytree(outside / "a", data / "cats")
    root = folder_with(data / "pets")
    (root / "cats").symlink_to(data / "cats", target_is_directory=True)  # stays inside the root
    assert load_dataset(root, confine=True).class_names == ["a", "b", "cats"]


def test_the_cwd_is_no_root_for_the_agent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tools.data import analyze_dataset

    monkeypatch.delenv(ENV_VAR, raising=False)
    folder_with(tmp_path / "pets")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DatasetError, match="dataset path pets is outside the allowed data roots"):
        analyze_dataset("pets")
    monkeypatch.chdir("/")
    with pytest.raises(DatasetError, match="outside the allowed data roots"):
        analyze_dataset("etc")

