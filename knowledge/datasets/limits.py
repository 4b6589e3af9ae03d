"""Decoding limits: how much memory a dataset file may make the loaders allocate.

A small file can declare a huge array: a 750 KB `.npz` of zeros decodes to 1 GB, a 140 KB PNG to a
12000 x 12000 image, and a PNG header may claim 100000 x 100000 pixels. The loaders therefore read
what a file *declares* (the `.npy` headers inside an `.npz`, an image's size from its header) and
check it against these limits before decoding anything:

- `MAX_IMAGE_PIXELS` (8192 x 8192 = 67 million): pixels of one image in a folder dataset; normal
  photos (up to 64 megapixels) pass, PIL's own decompression-bomb error never fires first.
- `MAX_DECODED_BYTES` (24 GiB): bytes one dataset may decode to in all (the arrays of an `.npz`,
  the images of a folder). The largest MedMNIST+ file, `pathmnist_224.npz`, decodes to 16.1 GB.
- `FREE_DECODED_BYTES` (512 MiB) and `MAX_EXPANSION` (100): beyond 512 MiB, a dataset may decode
  to at most 100 bytes per byte it takes on disk. Real image data compresses far less (the MedMNIST
  `.npz` files about 1.2:1, PNG/JPEG photos 5-20:1); a file of zeros compresses about 1000:1.

A file over a limit is refused with a DatasetError: one line naming the file and the limit.
"""

from __future__ import annotations

from knowledge.errors import DatasetError

MAX_IMAGE_PIXELS = 8192 * 8192
MAX_DECODED_BYTES = 24 * 2**30
FREE_DECODED_BYTES = 512 * 2**20
MAX_EXPANSION = 100


def human_bytes(n: int | float) -> str:
    """`n` bytes as a short text: '512 MiB', '1.5 GiB', '740 KiB', '12 B'."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


def check_image_pixels(width: int, height: int, where: str) -> None:
    """Refuse an image whose header declares more than MAX_IMAGE_PIXELS pixels (before decoding)."""
    if width * height > MAX_IMAGE_PIXELS:
        raise DatasetError(f"image is {width} x {height} pixels, over the limit of "
                           f"{MAX_IMAGE_PIXELS:,} pixels per image: {where}")


def too_big_image(where: str) -> DatasetError:
    """The error for an image Pillow itself refused as a decompression bomb (size unknown here)."""
    return DatasetError(f"image is over the limit of {MAX_IMAGE_PIXELS:,} pixels per image: {where}")


class DecodeBudget:
    """The decoded bytes of one dataset so far, against MAX_DECODED_BYTES and MAX_EXPANSION.

    `add(decoded, on_disk)` before decoding each part (an array, an image); DatasetError naming
    `where` as soon as the total is over a limit.
    """

    def __init__(self, where: str) -> None:
        self.where = where
        self.decoded = 0
        self.on_disk = 0

    def add(self, decoded: int, on_disk: int) -> None:
        """Count one more part: `decoded` bytes in memory from `on_disk` bytes of file."""
        self.decoded += int(decoded)
        self.on_disk += int(on_disk)
        self.check()

    def check(self) -> None:
        """DatasetError when the total so far is over either limit."""
        if self.decoded > MAX_DECODED_BYTES:
            raise DatasetError(f"dataset decodes to {human_bytes(self.decoded)}, over the limit of "
                               f"{human_bytes(MAX_DECODED_BYTES)}: {self.where}")
        if self.decoded > FREE_DECODED_BYTES and self.decoded > MAX_EXPANSION * self.on_disk:
            raise DatasetError(f"dataset decodes to {human_bytes(self.decoded)} from "
                               f"{human_bytes(self.on_disk)} on disk, over the limit of "
                               f"{MAX_EXPANSION}x its size beyond {human_bytes(FREE_DECODED_BYTES)} "
                               f"(a decompression bomb?): {self.where}")


__all__ = ["FREE_DECODED_BYTES", "MAX_DECODED_BYTES", "MAX_EXPANSION", "MAX_IMAGE_PIXELS",
           "DecodeBudget", "check_image_pixels", "human_bytes", "too_big_image"]
