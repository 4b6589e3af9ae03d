"""Allowed data roots: the folders an agent or the web UI may read datasets from.

A dataset path that comes from a chat message or a web form is untrusted text. Before anything
reads it, `resolve_in_roots(spec)` resolves it (home `~`, relative parts, `..`, symlinks) and
refuses it unless the real path lies inside one of `allowed_roots()`:

- `METALLMIX_DATA_ROOTS`: folders separated by `os.pathsep` (`:` on Linux/macOS, `;` on Windows);
- otherwise only the named-dataset folder (`paths.data_dir()`). The working directory is never an
  implicit root (an advisor started from `/` could otherwise read anything). The `metallmix`
  commands that take a dataset path on their own command line (`analyze`, `recommend`, `train`) are
  the user's own shell: they read the path given without this check.

`extra_roots(paths)` adds folders for the current context only (a `contextvars` scope: this thread
or task and what it starts with a copy of its context), e.g. one web session's own upload folder,
which no other session may read.

The top path is not enough: a class folder, one image or the `.npz` itself may be a link that
leads out of the roots. Inside `confined()` (which `load_dataset(spec, confine=True)` enters, as the
agent's tools do) `check_opened(path)` refuses every file or folder a loader opens outside the roots.

Named sources (`digits`, `fashion-mnist`, `mnist-5k`, `medmnist:<flag>`) read only fixed locations
and are always allowed. A variant query (`?n=500&seed=0`) is kept as it is.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

from knowledge import paths
from knowledge.errors import DatasetError

ENV_VAR = "METALLMIX_DATA_ROOTS"

#: roots added by `extra_roots` for the current context only (never process-wide)
_SCOPED_ROOTS: ContextVar[tuple[Path, ...]] = ContextVar("metallmix_scoped_roots", default=())


@contextmanager
def extra_roots(folders: Iterable[str | Path]) -> Iterator[None]:
    """Inside the block, `allowed_roots()` also lists `folders`, in this context only (the web app
    scopes each browser session's own upload folder this way: other sessions never see it)."""
    token = _SCOPED_ROOTS.set((*_SCOPED_ROOTS.get(), *(Path(f).expanduser() for f in folders)))
    try:
        yield
    finally:
        _SCOPED_ROOTS.reset(token)


def allowed_roots() -> list[Path]:
    """The folders datasets may be read from (real paths, duplicates removed, in order), with those
    of the enclosing `extra_roots` blocks last."""
    env = os.environ.get(ENV_VAR)
    if env is not None and env.strip():
        raw = [Path(part.strip()).expanduser() for part in env.split(os.pathsep) if part.strip()]
    else:
        raw = [paths.data_dir()]
    out: list[Path] = []
    for root in [*raw, *_SCOPED_ROOTS.get()]:
        real = Path(os.path.realpath(root))
        if real not in out:
            out.append(real)
    return out


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def resolve_in_roots(spec: str | Path, roots: Sequence[str | Path] | None = None) -> str:
    """The dataset spec with its path made real and absolute, if that path is inside a root.

    `spec` is a `.npz` file or folder path, optionally with a `?variant` query, or a named source
    (returned unchanged). Raises DatasetError for a path outside every root (after `..` and
    symlinks are resolved), or an empty or malformed spec; its one line names only the given path,
    neither its real path nor the roots (which may be another session's).
    Whether the file exists is left to `load_dataset`, which says so in its own error.
    """
    from knowledge.datasets.loader import split_spec  # lazy: import cycle (loader imports roots)
    from knowledge.datasets.sources import is_source  # lazy: import cycle (sources -> npz -> roots)

    text = str(spec)
    if "\x00" in text:
        raise DatasetError(f"dataset path contains a NUL character: {text!r}")
    name, query = split_spec(text)  # DatasetError for an empty spec
    if is_source(name):
        return text.strip()
    allowed = ([Path(os.path.realpath(Path(r).expanduser())) for r in roots] if roots is not None
               else allowed_roots())
    real = Path(os.path.realpath(Path(name).expanduser()))
    if not any(_inside(real, root) for root in allowed):
        raise DatasetError(f"dataset path {name} is outside the allowed data roots (the folders "
                           f"this session may read; set {ENV_VAR} to add one)")
    return str(real) + (f"?{query}" if query else "")


#: the roots (taken when `confined()` was entered) every opened file must lie in; None = unconfined
_CONFINED_TO: ContextVar[tuple[Path, ...] | None] = ContextVar("metallmix_confined_to", default=None)


@contextmanager
def confined() -> Iterator[None]:
    """Inside the block, `check_opened` refuses every file or folder outside `allowed_roots()`
    (taken once, on entry), in this context only."""
    token = _CONFINED_TO.set(tuple(allowed_roots()))
    try:
        yield
    finally:
        _CONFINED_TO.reset(token)


def check_opened(path: str | Path) -> Path:
    """The path a loader should open for `path`, called on each dataset file or folder it opens.

    Inside `confined()`: the real path (links resolved, so the file opened is the one checked), and
    DatasetError unless it lies in a root; the one line names `path` as the loader was given it,
    neither its real path nor the roots. Outside `confined()`: `path` unchanged, no check.
    """
    roots = _CONFINED_TO.get()
    if roots is None:
        return Path(path)
    real = Path(os.path.realpath(Path(path).expanduser()))
    if not any(_inside(real, root) for root in roots):
        raise DatasetError(f"dataset file {path} is outside the allowed data roots (a link in the "
                           f"dataset leads out of them; copy the files in, or set {ENV_VAR})")
    return real


__all__ = ["ENV_VAR", "allowed_roots", "check_opened", "confined", "extra_roots", "resolve_in_roots"]
