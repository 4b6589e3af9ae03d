"""Allowed data roots: the folders an agent or the web UI may read datasets from.

A dataset path that comes from a chat message or a web form is untrusted text. Before anything
reads it, `resolve_in_roots(spec)` resolves it (home `~`, relative parts, `..`, symlinks) and
refuses it unless the real path lies inside one of `allowed_roots()`:

- `METALLMIX_DATA_ROOTS`: folders separated by `os.pathsep` (`:` on Linux/macOS, `;` on Windows);
- otherwise the named-dataset folder (`paths.data_dir()`) and the current working directory.

Named sources (`digits`, `fashion-mnist`, `mnist-5k`, `medmnist:<flag>`) read only fixed locations
and are always allowed. A variant query (`?n=500&seed=0`) is kept as it is.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from knowledge import paths
from knowledge.errors import DatasetError

ENV_VAR = "METALLMIX_DATA_ROOTS"


def allowed_roots() -> list[Path]:
    """The folders datasets may be read from (real paths, duplicates removed, in order)."""
    env = os.environ.get(ENV_VAR)
    if env is not None and env.strip():
        raw = [Path(part.strip()).expanduser() for part in env.split(os.pathsep) if part.strip()]
    else:
        raw = [paths.data_dir(), Path.cwd()]
    out: list[Path] = []
    for root in raw:
        real = Path(os.path.realpath(root))
        if real not in out:
            out.append(real)
    return out


def _inside(path: Path, root: Path) -> bool:
    return path == root or path.is_relative_to(root)


def resolve_in_roots(spec: str | Path, roots: Sequence[str | Path] | None = None) -> str:
    """The dataset spec with its path made real and absolute, if that path is inside a root.

    `spec` is a `.npz` file or folder path, optionally with a `?variant` query, or a named source
    (returned unchanged). Raises DatasetError (one line naming the path and the roots) for a path
    outside every root (after `..` and symlinks are resolved), or an empty or malformed spec.
    Whether the file exists is left to `load_dataset`, which says so in its own error.
    """
    from knowledge.datasets.loader import split_spec
    from knowledge.datasets.sources import is_source

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
        where = ", ".join(str(r) for r in allowed) or "(none)"
        raise DatasetError(f"dataset path {name} resolves to {real}, outside the allowed data roots "
                           f"({where}); move it there or add its folder to {ENV_VAR}")
    return str(real) + (f"?{query}" if query else "")


__all__ = ["ENV_VAR", "allowed_roots", "resolve_in_roots"]
