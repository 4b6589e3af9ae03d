"""Upload checks of the web app: the limits, the .zip listing checks, the capped unpacking and the
.npz check (the security code of `ui.app`; see its docstring). A refused upload leaves nothing on
disk."""

from __future__ import annotations

import logging
import shutil
import stat
import zipfile
import zlib
from pathlib import Path
from typing import IO

from knowledge.errors import DatasetError

log = logging.getLogger("ui.app")

# Upload limits. A .zip is checked against its declared sizes before anything is written, then
# unpacked with a byte counter (a forged header cannot get past the caps); a .npz (also a zip) must
# keep to the entry count and total unpacked size, since loading it unpacks it in memory.
UPLOAD_LIMIT_BYTES = 200 * 1024 * 1024  #: the largest upload (Gradio's `max_file_size` too)
UNZIP_MAX_ENTRIES = 100_000  #: members of one archive (files and folders)
UNZIP_MAX_ENTRY_BYTES = 64 * 1024 * 1024  #: one unpacked file of a .zip of class folders
UNZIP_MAX_TOTAL_BYTES = 1024 * 1024 * 1024  #: all unpacked files of one upload together
UNZIP_MAX_RATIO = 100  #: unpacked / compressed size of one .zip member ...
UNZIP_RATIO_FLOOR_BYTES = 1024 * 1024  #: ... of at least this unpacked size (small ones vary a lot)
UPLOAD_MAX_AGE_S = 24 * 3600  #: uploads older than this are deleted (at start and on each upload)
_CHUNK = 1024 * 1024  # bytes unpacked at a time
UPLOAD_TYPES = (".npz", ".zip")


def _size(n: float) -> str:
    """A byte count for people: `512 bytes`, `60 KB`, `1.5 GB`."""
    if n < 1024:
        return f"{int(n)} bytes"
    for unit in ("KB", "MB", "GB"):
        n /= 1024
        if n < 1024 or unit == "GB":
            return f"{n:.3g} {unit}"
    raise AssertionError("unreachable")


def _shown(name: str) -> str:
    """An archive member's name, quoted and shortened, for an error message (it is untrusted text)."""
    return repr(name if len(name) <= 80 else name[:77] + "...")


def _skipped(name: str) -> bool:
    """Whether a member is left out: dot-named (`.DS_Store`, `._x.png`) or under `__MACOSX`."""
    return any(part.startswith(".") or part == "__MACOSX" for part in name.split("/") if part)


def _check_members(archive: str, infos: list[zipfile.ZipInfo], *, per_file: bool = True) -> None:
    """Refuse an archive from its listing, before anything is unpacked: too many members, members
    declared too big (each, when `per_file`; all together) or compressed too well (a zip bomb),
    encrypted members, and links or other special files. DatasetError names the limit."""
    if len(infos) > UNZIP_MAX_ENTRIES:
        raise DatasetError(f"{archive}: {len(infos):,} entries, over the limit of "
                           f"{UNZIP_MAX_ENTRIES:,} entries per archive")
    total = 0
    for info in infos:
        kind = stat.S_IFMT(info.external_attr >> 16)
        if kind == stat.S_IFLNK:
            raise DatasetError(f"{archive}: symbolic links are not allowed in an upload "
                               f"({_shown(info.filename)})")
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise DatasetError(f"{archive}: only plain files and folders are allowed in an upload "
                               f"({_shown(info.filename)})")
        if info.flag_bits & 0x1:
            raise DatasetError(f"{archive}: encrypted entries are not supported ({_shown(info.filename)})")
        if per_file and info.file_size > UNZIP_MAX_ENTRY_BYTES:
            raise DatasetError(f"{archive}: {_shown(info.filename)} unpacks to {_size(info.file_size)}, "
                               f"over the {_size(UNZIP_MAX_ENTRY_BYTES)} limit per file")
        if per_file and info.file_size >= UNZIP_RATIO_FLOOR_BYTES and (
                info.file_size > UNZIP_MAX_RATIO * max(info.compress_size, 1)):
            ratio = info.file_size / max(info.compress_size, 1)
            raise DatasetError(f"{archive}: {_shown(info.filename)} is compressed {ratio:,.0f}:1, "
                               f"over the {UNZIP_MAX_RATIO}:1 limit (a zip bomb?)")
        total += info.file_size
        if total > UNZIP_MAX_TOTAL_BYTES:
            raise DatasetError(f"{archive}: unpacks to more than {_size(UNZIP_MAX_TOTAL_BYTES)}, the "
                               "limit of unpacked data per upload")


def _copy_capped(source: IO[bytes], dest: IO[bytes], cap: int, too_big: str) -> int:
    """Copy `source` to `dest` in chunks, refusing (DatasetError `too_big`) as soon as more than
    `cap` bytes came out, whatever the archive's header said; returns the bytes copied."""
    copied = 0
    while chunk := source.read(min(_CHUNK, cap - copied + 1)):
        copied += len(chunk)
        if copied > cap:
            raise DatasetError(too_big)
        dest.write(chunk)
    return copied


def _unpack(zf: zipfile.ZipFile, archive: str, infos: list[zipfile.ZipInfo], root: Path) -> None:
    """Write the (already checked) members into `root`, skipping dot-named ones, counting the bytes
    that really come out against the declared sizes and the caps."""
    left = UNZIP_MAX_TOTAL_BYTES
    for info in infos:
        if _skipped(info.filename):
            continue
        dest = root / info.filename
        if info.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            raise DatasetError(f"{archive}: {_shown(info.filename)} appears twice in the archive")
        cap = min(info.file_size, UNZIP_MAX_ENTRY_BYTES, left)
        with zf.open(info) as source, open(dest, "xb") as out:
            left -= _copy_capped(source, out, cap, (
                f"{archive}: {_shown(info.filename)} unpacks to more than its header says or than "
                f"the limits allow ({_size(UNZIP_MAX_ENTRY_BYTES)} per file, "
                f"{_size(UNZIP_MAX_TOTAL_BYTES)} per upload)"))


def _safe_extract(archive: Path, target: Path) -> Path:
    """Extract a .zip of class folders into `target` (a new folder); returns the dataset folder
    (the single top-level folder when there is one).

    Refused with DatasetError, and `target` removed, before anything is written when a member
    leaves `target`, is a link or special file, is encrypted, or the listing breaks a limit
    (`UNZIP_MAX_*`); and while unpacking when more bytes come out than declared or allowed.
    Dot-named members (`.DS_Store`, `__MACOSX/`) are skipped."""
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            root = target.resolve()
            for member in infos:
                dest = (target / member.filename).resolve()
                if not dest.is_relative_to(root):
                    raise DatasetError(f"{archive.name}: unsafe path in the archive: "
                                       f"{_shown(member.filename)}")
            _check_members(archive.name, infos)
            target.mkdir(parents=True, exist_ok=True)
            _unpack(zf, archive.name, infos, target)
    except DatasetError:
        shutil.rmtree(target, ignore_errors=True)
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, ValueError,
            NotImplementedError) as exc:
        shutil.rmtree(target, ignore_errors=True)
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise DatasetError(f"{archive.name}: not a valid .zip file ({type(exc).__name__}: "
                           f"{(detail.splitlines() or [''])[0][:120]})") from None
    entries = [p for p in target.iterdir() if not _skipped(p.name)]
    if len(entries) == 1 and entries[0].is_dir():
        inner = [p for p in entries[0].iterdir() if p.is_dir() and not p.name.startswith(".")]
        if inner:
            return entries[0]
    return target


def _check_npz(archive: Path) -> None:
    """Refuse a .npz (a zip of arrays, unpacked in memory when loaded) with too many members or too
    much unpacked data (`UNZIP_MAX_ENTRIES`, `UNZIP_MAX_TOTAL_BYTES`)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            _check_members(archive.name, zf.infolist(), per_file=False)
    except zipfile.BadZipFile:
        raise DatasetError(f"{archive.name}: not a valid .npz file") from None
