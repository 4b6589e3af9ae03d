"""Allowed data roots: paths from an agent or a web form are resolved and confined."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from knowledge import paths
from knowledge.datasets.roots import ENV_VAR, allowed_roots, resolve_in_roots
from knowledge.errors import DatasetError


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "x.npz").write_bytes(b"")
    (tmp_path / "secret.npz").write_bytes(b"")
    monkeypatch.setenv(ENV_VAR, str(data))
    return data


def test_default_roots_are_data_dir_and_cwd(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    assert allowed_roots() == [Path(os.path.realpath(paths.data_dir())), Path(os.path.realpath(tmp_path))]


def test_env_roots_are_pathsep_separated(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv(ENV_VAR, os.pathsep.join([str(tmp_path / "a"), "", str(tmp_path / "b"),
                                                 str(tmp_path / "a")]))
    assert allowed_roots() == [tmp_path / "a", tmp_path / "b"]


def test_paths_inside_a_root_resolve_to_real_absolute_paths(root: Path, monkeypatch) -> None:
    assert resolve_in_roots(root / "sub" / "x.npz") == str(root / "sub" / "x.npz")
    assert resolve_in_roots(f"{root}/sub/../sub/x.npz?n=50&seed=1") == f"{root / 'sub' / 'x.npz'}?n=50&seed=1"
    monkeypatch.chdir(root)
    assert resolve_in_roots("sub/x.npz") == str(root / "sub" / "x.npz")
    assert resolve_in_roots("sub") == str(root / "sub")  # a folder dataset
    assert resolve_in_roots("not-there.npz") == str(root / "not-there.npz")  # load_dataset says missing


@pytest.mark.parametrize("spec", ["digits", "fashion-mnist", "mnist-5k", "medmnist:pneumoniamnist",
                                  "medmnist:bloodmnist_64?n=100&seed=0"])
def test_named_sources_are_always_allowed(root: Path, spec: str) -> None:
    assert resolve_in_roots(spec) == spec


def test_traversal_absolute_and_symlinks_outside_are_refused(root: Path, tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(DatasetError, match=r"outside the allowed data roots .*METALLMIX_DATA_ROOTS"):
        resolve_in_roots(f"{root}/sub/../../secret.npz")
    monkeypatch.chdir(root / "sub")
    with pytest.raises(DatasetError, match="secret.npz"):
        resolve_in_roots("../../secret.npz")
    with pytest.raises(DatasetError, match="/etc/passwd"):
        resolve_in_roots("/etc/passwd")
    with pytest.raises(DatasetError, match="outside"):
        resolve_in_roots("~/../../etc/shadow?n=5")
    (root / "link.npz").symlink_to(tmp_path / "secret.npz")
    with pytest.raises(DatasetError, match=f"resolves to {tmp_path / 'secret.npz'}"):
        resolve_in_roots(root / "link.npz")
    (root / "escape").symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(DatasetError, match="outside"):
        resolve_in_roots(root / "escape" / "secret.npz")
    # a link from elsewhere INTO a root is fine: the real path counts
    (tmp_path / "inbound.npz").symlink_to(root / "sub" / "x.npz")
    assert resolve_in_roots(tmp_path / "inbound.npz") == str(root / "sub" / "x.npz")


def test_prefix_of_a_root_is_not_inside_it(root: Path) -> None:
    sibling = root.parent / (root.name + "-other")
    sibling.mkdir()
    with pytest.raises(DatasetError, match="outside"):
        resolve_in_roots(sibling / "x.npz")


def test_explicit_roots_and_bad_specs(root: Path, tmp_path: Path) -> None:
    assert resolve_in_roots(tmp_path / "secret.npz", roots=[tmp_path]) == str(tmp_path / "secret.npz")
    with pytest.raises(DatasetError, match="outside"):
        resolve_in_roots(tmp_path / "secret.npz", roots=[])
    with pytest.raises(DatasetError, match="empty dataset spec"):
        resolve_in_roots("  ")
    with pytest.raises(DatasetError, match="NUL"):
        resolve_in_roots("a\x00b.npz")
