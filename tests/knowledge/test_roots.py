"""Allowed data roots: paths from an agent or a web form are resolved and confined."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from knowledge import paths
from knowledge.datasets.roots import ENV_VAR, allowed_roots, extra_roots, resolve_in_roots
from knowledge.errors import DatasetError


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "sub" / "x.npz").write_bytes(b"")
    (tmp_path / "secret.npz").write_bytes(b"")
    monkeypatch.setenv(ENV_VAR, str(data))
    return data


def test_default_root_is_the_data_dir_never_cwd(monkeypatch, tmp_path) -> None:
    """The working directory is no implicit root: an advisor started from / could read anything."""
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.npz").write_bytes(b"")
    assert allowed_roots() == [Path(os.path.realpath(paths.data_dir()))]
    with pytest.raises(DatasetError, match="x.npz is outside the allowed data roots"):
        resolve_in_roots("x.npz")
    monkeypatch.chdir("/")
    with pytest.raises(DatasetError, match="outside the allowed data roots"):
        resolve_in_roots("etc/passwd")


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
    with pytest.raises(DatasetError, match="link.npz is outside") as refused:
        resolve_in_roots(root / "link.npz")
    assert "secret" not in str(refused.value)  # the real path behind the link is not told
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


def test_refusals_name_only_the_given_path_not_the_roots(root: Path, tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as refused:
        resolve_in_roots(tmp_path / "secret.npz")
    text = str(refused.value)
    assert str(tmp_path / "secret.npz") in text and str(root) not in text and "\n" not in text


def test_extra_roots_hold_in_their_context_only(root: Path, tmp_path: Path) -> None:
    import contextvars
    import threading

    mine = tmp_path / "uploads" / "alice"
    mine.mkdir(parents=True)
    with pytest.raises(DatasetError, match="outside"):
        resolve_in_roots(mine / "x.npz")
    seen: dict[str, list[Path]] = {}
    with extra_roots([mine]):
        assert allowed_roots() == [root, mine]
        assert resolve_in_roots(mine / "x.npz") == str(mine / "x.npz")
        with extra_roots([tmp_path / "other"]):  # nested blocks add up, and undo in order
            assert allowed_roots() == [root, mine, tmp_path / "other"]
        assert allowed_roots() == [root, mine]
        other = threading.Thread(target=lambda: seen.update(plain=allowed_roots()))  # a new context
        copied = contextvars.copy_context()
        other.start()
        other.join()
    assert seen["plain"] == [root]  # another thread (another session) does not get the folder
    assert copied.run(allowed_roots) == [root, mine]  # a copied context (tool executors) keeps it
    assert allowed_roots() == [root]
    with pytest.raises(DatasetError, match="outside"):
        resolve_in_roots(mine / "x.npz")


def test_check_opened_checks_nothing_outside_confined(root: Path, tmp_path: Path) -> None:
    from knowledge.datasets.roots import check_opened

    (root / "link.npz").symlink_to(tmp_path / "secret.npz")
    assert check_opened(root / "link.npz") == root / "link.npz"  # trusted callers: the CLI, sweeps


def test_confined_refuses_every_opened_file_outside_the_roots(root: Path, tmp_path: Path) -> None:
    from knowledge.datasets.roots import check_opened, confined

    (root / "cls").symlink_to(tmp_path, target_is_directory=True)
    (root / "inside").symlink_to(root / "sub", target_is_directory=True)
    with confined():
        assert check_opened(root / "inside" / "x.npz") == root / "sub" / "x.npz"  # the real path
        with pytest.raises(DatasetError) as refused:
            check_opened(root / "cls" / "secret.npz")
    text = str(refused.value)
    assert text.startswith(f"dataset file {root / 'cls' / 'secret.npz'} is outside the allowed data roots")
    assert str(tmp_path / "secret.npz") not in text and ENV_VAR in text and "\n" not in text
    assert check_opened(root / "cls" / "secret.npz") == root / "cls" / "secret.npz"  # block left


def test_confined_takes_the_roots_in_force_on_entry(root: Path, tmp_path: Path, monkeypatch) -> None:
    from knowledge.datasets.roots import check_opened, confined

    upload = tmp_path / "upload"
    upload.mkdir()
    with extra_roots([upload]), confined():
        assert check_opened(upload / "a.png") == upload / "a.png"  # a session's scoped root counts
        monkeypatch.setenv(ENV_VAR, str(tmp_path))  # a change inside the block does not widen it
        with pytest.raises(DatasetError, match="outside"):
            check_opened(tmp_path / "secret.npz")
