"""The `metallmix llm serve` daemon's state files, and clients attaching to it (no real model)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent.backends import daemon, llamacpp
from agent.backends.daemon import ServerState
from agent.configuration import AgentConfig
from agent.llm import get_chat_model


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _state(model: Path, pid: int | None = None, port: int = 9) -> ServerState:
    return ServerState(pid=os.getpid() if pid is None else pid, host="127.0.0.1", port=port,
                       model=str(model.resolve()), n_ctx=4096, threads=1, started=1.0)


@pytest.fixture
def gguf(tmp_path: Path) -> Path:
    path = tmp_path / "models" / "tiny-model.gguf"
    path.parent.mkdir()
    path.write_bytes(b"GGUF")
    return path


@pytest.fixture
def servers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "servers"
    monkeypatch.setenv(daemon.ENV_DIR, str(directory))
    return directory


@pytest.fixture
def fake_models_server() -> Iterator[tuple[int, list[str]]]:
    """An HTTP server answering /v1/models like llama.cpp (ids in the list)."""
    ids: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path != "/v1/models":
                self.send_response(404)
                self.end_headers()
                return
            body = json.dumps({"object": "list", "data": [{"id": i} for i in ids]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield http.server_address[1], ids
    finally:
        http.shutdown()


def test_default_dir_from_env(servers: Path) -> None:
    assert daemon.default_dir() == servers


def test_state_path_is_per_model_file(gguf: Path, tmp_path: Path) -> None:
    other = tmp_path / "other" / gguf.name
    a, b = daemon.state_path(gguf, tmp_path), daemon.state_path(other, tmp_path)
    assert a != b and a.name.startswith("tiny-model-") and a.suffix == ".json"
    assert daemon.state_path(str(gguf), tmp_path) == a


def test_write_then_read(gguf: Path, servers: Path) -> None:
    state = _state(gguf)
    path = daemon.write_state(state)
    assert path.parent == servers and daemon.read_state(path) == state
    assert state.base_url == "http://127.0.0.1:9/v1" and state.model_name == "tiny-model"
    assert not list(servers.glob(".tmp-*"))  # written atomically, no leftovers


@pytest.mark.parametrize("text", ["", "{", "[]", '{"pid": 1}', '{"pid": "x", "host": 1}'])
def test_unreadable_state_is_ignored(gguf: Path, servers: Path, text: str) -> None:
    path = daemon.state_path(gguf)
    path.parent.mkdir(parents=True)
    path.write_text(text)
    assert daemon.read_state(path) is None
    assert daemon.find_server(gguf, probe=lambda s: True) is None


def test_no_state_file(gguf: Path, servers: Path) -> None:
    assert daemon.find_server(gguf, probe=lambda s: True) is None


def test_dead_pid_removes_the_state_file(gguf: Path, servers: Path) -> None:
    path = daemon.write_state(_state(gguf, pid=_dead_pid()))
    assert daemon.find_server(gguf, probe=lambda s: True) is None
    assert not path.exists()


def test_live_pid_that_does_not_answer_is_left_alone(gguf: Path, servers: Path) -> None:
    path = daemon.write_state(_state(gguf))
    assert daemon.find_server(gguf, probe=lambda s: False) is None
    assert path.exists()  # maybe still loading: its own daemon removes it


def test_live_answering_daemon_is_found(gguf: Path, servers: Path) -> None:
    state = _state(gguf)
    daemon.write_state(state)
    assert daemon.find_server(gguf, probe=lambda s: True) == state
    assert daemon.list_servers(probe=lambda s: True) == [(state, True)]


def test_remove_state_keeps_a_newer_daemons_file(gguf: Path, servers: Path) -> None:
    old = _state(gguf, pid=_dead_pid())
    path = daemon.write_state(_state(gguf))  # a newer daemon wrote its own state since
    daemon.remove_state(old)
    assert path.exists()
    daemon.remove_state(_state(gguf))
    assert not path.exists()


def test_pid_alive() -> None:
    assert daemon.pid_alive(os.getpid())
    assert not daemon.pid_alive(_dead_pid())
    assert not daemon.pid_alive(0) and not daemon.pid_alive(-5)


def test_answers_checks_the_model(gguf: Path, fake_models_server) -> None:
    port, ids = fake_models_server
    state = _state(gguf, port=port)
    assert not daemon.answers(state)  # serves another model (none)
    ids.append("tiny-model")
    assert daemon.answers(state)
    closed = _state(gguf, port=9)
    assert not daemon.answers(closed, timeout=0.5)


def test_list_servers_drops_dead_ones(gguf: Path, tmp_path: Path, servers: Path) -> None:
    other = tmp_path / "b.gguf"
    other.write_bytes(b"GGUF")
    live = _state(gguf)
    daemon.write_state(live)
    daemon.write_state(_state(other, pid=_dead_pid()))
    assert daemon.list_servers(probe=lambda s: False) == [(live, False)]
    assert len(list(servers.glob("*.json"))) == 1


def test_get_chat_model_attaches_to_the_daemon(gguf: Path, servers: Path, fake_models_server,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    port, ids = fake_models_server
    ids.append("tiny-model")
    daemon.write_state(_state(gguf, port=port))

    def no_start(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the model must not be loaded in this process")

    monkeypatch.setattr(llamacpp.EmbeddedLlamaServer, "shared", staticmethod(no_start))
    model, info = get_chat_model(f"llamacpp:{gguf}", AgentConfig(models_dir=gguf.parent))
    assert info.base_url == f"http://127.0.0.1:{port}/v1"
    assert f"llama.cpp daemon pid {os.getpid()}" in info.description
    assert model.inner.openai_api_base == info.base_url
    assert model.inner.extra_body == {"cache_prompt": True}


def test_get_chat_model_without_a_daemon_starts_in_process(gguf: Path, servers: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    daemon.write_state(_state(gguf, pid=_dead_pid()))  # a crashed daemon
    started = []

    class Fake:
        gguf_path = gguf
        model_name = "tiny-model"
        base_url = "http://127.0.0.1:9/v1"
        threads_used = 1

    def shared(path, n_ctx=8192, threads=None):  # noqa: ANN001, ANN202
        started.append(Path(path))
        return Fake()

    monkeypatch.setattr(llamacpp.EmbeddedLlamaServer, "shared", staticmethod(shared))
    model, info = get_chat_model(f"llamacpp:{gguf}", AgentConfig(models_dir=gguf.parent))
    assert started == [gguf] and "in-process, 1 threads (free cores)" in info.description
    assert model.inner.extra_body == {"cache_prompt": True}
    assert not daemon.state_path(gguf).exists()


class _FakeEmbedded:
    """Stands in for EmbeddedLlamaServer in serve_daemon (no model is loaded)."""

    stopped = 0

    def __init__(self, path, n_ctx=8192, threads=None, port=0):  # noqa: ANN001
        self.gguf_path = Path(path).resolve()
        self.model_name = self.gguf_path.name.removesuffix(".gguf")
        self.threads_used = threads or 1
        self.base_url = "http://127.0.0.1:4321/v1"
        self.address = ("127.0.0.1", 4321)

    def start(self):  # noqa: ANN201
        return self

    def stop(self) -> None:
        type(self).stopped += 1


def test_serve_daemon_writes_and_removes_its_state(gguf: Path, servers: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(llamacpp, "EmbeddedLlamaServer", _FakeEmbedded)
    ready, stop, said = threading.Event(), threading.Event(), []
    codes: list[int] = []
    worker = threading.Thread(target=lambda: codes.append(llamacpp.serve_daemon(
        gguf, n_ctx=2048, threads=2, ready=ready, stop=stop, announce=said.append)))
    worker.start()
    try:
        assert ready.wait(10)
        state = daemon.read_state(daemon.state_path(gguf))
        assert state is not None and (state.pid, state.port, state.threads, state.n_ctx) == (
            os.getpid(), 4321, 2, 2048)
        assert "serving tiny-model at http://127.0.0.1:4321/v1 with 2 threads" in said[0]
        # a second daemon for the same file refuses (the first answers)
        monkeypatch.setattr(daemon, "answers", lambda s, timeout=1.0: True)
        second = threading.Event()
        assert llamacpp.serve_daemon(gguf, announce=said.append, stop=second, ready=second) == 1
        assert "already serving tiny-model" in said[-1] and not second.is_set()
    finally:
        stop.set()
        worker.join(10)
    assert codes == [0] and _FakeEmbedded.stopped >= 1
    assert not daemon.state_path(gguf).exists()


def test_cli_status_and_stop_without_daemons(servers: Path, capsys: pytest.CaptureFixture) -> None:
    from ui.cli import main

    assert main(["llm", "status"]) == 0
    assert "no llama.cpp daemon running" in capsys.readouterr().out
    assert main(["llm", "stop"]) == 0
    assert "no llama.cpp daemon to stop" in capsys.readouterr().out
