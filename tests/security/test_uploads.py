"""Hostile uploads and hostile paths in the web app: one browser session must not read another's
upload, and an upload must not fill the disk (zip bombs, forged headers, links, hidden entries)."""

from __future__ import annotations

import contextvars
import io
import json
import os
import stat
import struct
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import ui.app
import ui.uploads  # the upload checks are defined (and patched) there
from knowledge.datasets.roots import ENV_VAR, resolve_in_roots
from knowledge.errors import DatasetError
from tests.ui.helpers import make_app, tiny_npz
from ui.app import AdvisorApp

ASKS = ["Which imaging modality are the images?"] * 8  # what the scripted advisor answers


def leftovers(app: AdvisorApp) -> list[Path]:
    """Every file under the app's upload folder."""
    return [p for p in app.upload_dir.rglob("*") if p.is_file() or p.is_symlink()]


def saved_path(history: list[dict]) -> Path:
    """The dataset path the upload told the advisor."""
    return Path(history[0]["content"].split(": ", 1)[1])


def analyze_outputs(app: AdvisorApp, thread: str) -> list[dict]:
    """The outputs of the graph's analyze_dataset calls in one conversation."""
    return [json.loads(t["output"]) for t in app.session.values(thread).get("tool_outputs") or []
            if t["tool"] == "analyze_dataset"]


def in_fresh_threads(steps: Iterator) -> list:
    """Drive a streaming handler the way Gradio does: every step in another worker thread, each
    with its own copy of a context that has no scope of its own."""
    base = contextvars.copy_context()
    out: list = []
    while True:
        box: dict = {}

        def step() -> None:
            try:
                box["value"] = base.copy().run(next, steps)
            except StopIteration:
                box["done"] = True

        worker = threading.Thread(target=step)
        worker.start()
        worker.join()
        if box.get("done"):
            return out
        out.append(box["value"])


# --- one session, one set of uploads ----------------------------------------------------------

def test_a_session_reads_its_own_upload_but_not_another_sessions(store_path, tmp_path):
    app = make_app(tmp_path, store_path, ASKS)
    roots_before = os.environ.get(ENV_VAR)
    status, history, alice, *_ = app.upload(str(tiny_npz(tmp_path / "tiny.npz")), [], None)
    assert "2 classes" in status, status
    assert os.environ.get(ENV_VAR) == roots_before  # no process-wide root was added
    mine = saved_path(history)
    assert mine.is_relative_to(app.upload_dir / alice)
    [measured] = analyze_outputs(app, alice)  # the graph's own tool call (in LangGraph's threads)
    assert "error" not in measured and measured["traits"]["n_classes"] == 2
    with pytest.raises(DatasetError, match="outside"):  # the scope ended with the handler
        resolve_in_roots(mine)

    history, _, bob, *_ = app.chat(f"I uploaded my dataset: {mine}", [], None)
    assert bob != alice
    [refused] = analyze_outputs(app, bob)
    assert "outside the allowed data roots" in refused["error"]
    assert str(tmp_path / "data") not in refused["error"]  # the roots are not told
    assert str(app.upload_dir / bob) not in refused["error"]
    assert "n_classes" not in json.dumps(app.session.values(bob).get("traits") or {})
    app.close()


def test_a_link_to_another_sessions_upload_is_refused_without_telling_where_it_points(store_path, tmp_path):
    app = make_app(tmp_path, store_path, ASKS)
    _, history, alice, *_ = app.upload(str(tiny_npz(tmp_path / "tiny.npz")), [], None)
    mine = saved_path(history)
    (tmp_path / "data").mkdir(exist_ok=True)
    peek = tmp_path / "data" / "peek.npz"  # inside a root that every session may read ...
    peek.symlink_to(mine)                  # ... pointing into alice's uploads
    _, _, bob, *_ = app.chat(f"I uploaded my dataset: {peek}", [], None)
    [refused] = analyze_outputs(app, bob)
    assert "peek.npz" in refused["error"] and "outside" in refused["error"]
    assert alice not in refused["error"] and str(mine) not in refused["error"]
    app.close()


def test_tools_in_another_sessions_scope_refuse_the_upload(store_path, tmp_path):
    from tools import get_tools

    app = make_app(tmp_path, store_path, ASKS)
    _, history, alice, *_ = app.upload(str(tiny_npz(tmp_path / "tiny.npz")), [], None)
    mine = str(saved_path(history))
    tools = {t.name: t for t in get_tools(store_path)}
    config = {"model": "resnet18", "pretrained": False, "epochs": 1}
    with app.session_roots("bob"):
        analyzed = json.loads(tools["analyze_dataset"].invoke({"path": mine}))
        launched = json.loads(tools["launch_training"].invoke(
            {"dataset": mine, "config": config, "confirmed": True}))
    assert "outside" in analyzed["error"]
    assert "outside the allowed data roots" in launched["error"]  # never trained on it
    with app.session_roots(alice):
        assert "error" not in json.loads(tools["analyze_dataset"].invoke({"path": mine}))
    app.close()


def test_the_scope_holds_when_gradio_runs_each_step_in_another_thread(store_path, tmp_path):
    app = make_app(tmp_path, store_path, ASKS)
    outputs = in_fresh_threads(app.upload_stream(str(tiny_npz(tmp_path / "tiny.npz")), [], None))
    status, history, thread, *_ = outputs[-1]
    assert "2 classes" in status, status
    [measured] = analyze_outputs(app, thread)
    assert "error" not in measured, measured
    app.close()


# --- zip bombs and other hostile archives -----------------------------------------------------

def zip_of(path: Path, members: dict[str, bytes], *, level: int = 9) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def png_bytes(value: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.full((8, 8), value, dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def class_folders(n: int = 6) -> dict[str, bytes]:
    return {f"scans/{label}/{i}.png": png_bytes(40 * (label == "b") + i)
            for label in ("a", "b") for i in range(n)}


def refused(app: AdvisorApp, archive: Path) -> str:
    status, history, *_ = app.upload(str(archive), [], None)
    assert status.startswith(f"error: {archive.name}: ") and "\n" not in status, status
    assert history == []  # the advisor was not told
    assert leftovers(app) == []  # nothing stays on disk
    return status


@pytest.fixture
def app(store_path, tmp_path) -> Iterator[AdvisorApp]:
    app = make_app(tmp_path, store_path, ASKS)
    yield app
    app.close()


def test_a_highly_compressed_entry_is_refused_before_it_is_written(app, tmp_path, monkeypatch):
    bomb = zip_of(tmp_path / "bomb.zip", {"scans/a/0.png": bytes(60 * 2**20)})  # 60 MB of zeros
    assert bomb.stat().st_size < 200 * 2**10
    written = []
    monkeypatch.setattr(ui.uploads, "_unpack", lambda *args: written.append(args))
    status = refused(app, bomb)
    assert "over the 100:1 limit" in status and "'scans/a/0.png'" in status
    assert written == []  # refused from the listing: nothing was unpacked


def test_a_dot_named_big_entry_is_refused_too(app, tmp_path):
    members = {**class_folders(), "scans/.cache/blob.bin": bytes(60 * 2**20)}
    status = refused(app, zip_of(tmp_path / "hidden.zip", members))
    assert "'scans/.cache/blob.bin'" in status and "limit" in status


def test_entries_over_the_per_file_limit_are_refused(app, tmp_path, monkeypatch):
    monkeypatch.setattr(ui.uploads, "UNZIP_MAX_ENTRY_BYTES", 2**20)
    big = np.random.default_rng(0).bytes(2**20 + 1)  # incompressible: no ratio problem
    status = refused(app, zip_of(tmp_path / "big.zip", {**class_folders(), "scans/a/big.png": big}))
    assert "unpacks to 1 MB, over the 1 MB limit per file" in status


def test_archives_over_the_total_limit_are_refused(app, tmp_path, monkeypatch):
    monkeypatch.setattr(ui.uploads, "UNZIP_MAX_TOTAL_BYTES", 3 * 2**20)
    rng = np.random.default_rng(0)
    members = {f"scans/a/{i}.png": rng.bytes(2**20) for i in range(4)}
    status = refused(app, zip_of(tmp_path / "total.zip", members, level=1))
    assert "unpacks to more than 3 MB, the limit of unpacked data per upload" in status


def test_archives_with_too_many_entries_are_refused(app, tmp_path, monkeypatch):
    monkeypatch.setattr(ui.uploads, "UNZIP_MAX_ENTRIES", 50)
    members = {f"scans/{'ab'[i % 2]}/{i}.png": b"" for i in range(51)}
    status = refused(app, zip_of(tmp_path / "many.zip", members))
    assert "51 entries, over the limit of 50 entries per archive" in status


def test_symlink_entries_are_refused(app, tmp_path):
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in class_folders().items():
            zf.writestr(name, data)
        link = zipfile.ZipInfo("scans/a/passwd.png")
        link.create_system = 3  # unix
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    status = refused(app, archive)
    assert "symbolic links are not allowed" in status and "passwd.png" in status


def test_a_forged_size_header_cannot_write_more_than_it_declares(app, tmp_path):
    archive = zip_of(tmp_path / "forged.zip", {**class_folders(), "scans/a/zeros.png": bytes(2**20)})
    data = bytearray(archive.read_bytes())
    name = b"scans/a/zeros.png"
    local = data.find(name) - 30  # the member's local header, then its central directory entry
    assert data[local:local + 4] == b"PK\x03\x04"
    central = data.rfind(name) - 46
    assert data[central + 46:central + 46 + len(name)] == name
    struct.pack_into("<I", data, local + 22, 1000)     # uncompressed size: 1000 bytes, not 1 MB
    struct.pack_into("<I", data, central + 24, 1000)
    archive.write_bytes(bytes(data))
    assert [i.file_size for i in zipfile.ZipFile(archive).infolist() if i.filename == name.decode()] == [1000]
    status = refused(app, archive)
    assert "not a valid .zip file" in status


def test_the_byte_counter_stops_at_the_cap_whatever_the_header_said():
    out = io.BytesIO()
    with pytest.raises(DatasetError, match="too much"):
        ui.app._copy_capped(io.BytesIO(bytes(10 * 2**20)), out, 3 * 2**20 + 5, "too much")
    assert len(out.getvalue()) <= 3 * 2**20 + 5
    out = io.BytesIO()
    assert ui.app._copy_capped(io.BytesIO(b"x" * 100), out, 100, "too much") == 100


def test_a_npz_that_unpacks_to_too_much_is_refused(app, tmp_path, monkeypatch):
    monkeypatch.setattr(ui.uploads, "UNZIP_MAX_TOTAL_BYTES", 2**20)
    path = tmp_path / "huge.npz"
    np.savez_compressed(path, train_images=np.zeros((2000, 28, 28), np.uint8),
                        train_labels=np.zeros((2000, 1), np.uint8))
    status = refused(app, path)
    assert "limit of unpacked data per upload" in status


def test_a_normal_zip_of_class_folders_is_unpacked_without_its_hidden_entries(app, tmp_path):
    members = {**class_folders(), "scans/.DS_Store": b"junk", "scans/a/._0.png": b"junk",
               "__MACOSX/scans/a/._1.png": b"junk", ".hidden": b"junk"}
    status, history, thread, traits, *_ = app.upload(str(zip_of(tmp_path / "scans.zip", members)),
                                                     [], None)
    assert status == "scans.zip: 12 images, 2 classes measured.", status
    dataset = saved_path(history)
    assert dataset.name == "scans" and sorted(p.name for p in dataset.iterdir()) == ["a", "b"]
    names = sorted(p.name for p in leftovers(app))
    assert len(names) == 12 and not any(n.startswith(".") for n in names)
    assert not list(app.upload_dir.rglob("__MACOSX"))


def test_the_archive_check_runs_on_the_listing_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(ui.uploads, "UNZIP_MAX_ENTRIES", 3)
    archive = zip_of(tmp_path / "x.zip", {f"c/{i}.png": b"" for i in range(4)})
    target = tmp_path / "out" / "x"
    with pytest.raises(DatasetError, match="4 entries, over the limit of 3"):
        ui.app._safe_extract(archive, target)
    assert not target.exists()
