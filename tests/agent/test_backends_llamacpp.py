"""`EmbeddedLlamaServer` thread choice and `retune` (no model is loaded: start/stop are faked)."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent import cpu
from agent.backends import llamacpp
from agent.backends.llamacpp import EmbeddedLlamaServer


@pytest.fixture
def fake_start(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int | None, int]]:
    """start() records (threads used, port) and pretends to listen; stop() forgets the address."""
    starts: list[tuple[int | None, int]] = []

    def start(self, threads=None):  # noqa: ANN001, ANN202
        self.threads_used = threads or cpu.llama_threads(self.threads)
        port = self.port or 40000 + len(starts)
        starts.append((self.threads_used, port))
        self._server = object()
        self._address = f"http://127.0.0.1:{port}"
        return self

    monkeypatch.setattr(EmbeddedLlamaServer, "start", start)
    return starts


def test_auto_threads_follow_the_free_cores(fake_start, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    free = [2]
    monkeypatch.setattr(llamacpp.cpu, "free_cores", lambda interval=0.3: free[0])
    server = EmbeddedLlamaServer(tmp_path / "m.gguf").start()
    assert fake_start == [(2, 40000)] and server.threads_used == 2
    url = server.base_url
    assert not server.retune()  # nothing changed
    free[0] = 1  # another program now keeps a core busy
    assert server.retune()
    assert fake_start[-1] == (1, 40000) and server.base_url == url  # same address
    assert not server.retune()
    free[0] = 2
    assert server.retune() and server.threads_used == 2 and server.base_url == url


def test_configured_threads_never_change(fake_start, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.setattr(llamacpp.cpu, "free_cores", lambda interval=0.3: 1)
    server = EmbeddedLlamaServer(tmp_path / "m.gguf", threads=2).start()
    assert server.threads_used == 2 and not server.retune() and len(fake_start) == 1


def test_a_stopped_server_is_not_retuned(tmp_path: Path) -> None:
    assert not EmbeddedLlamaServer(tmp_path / "m.gguf").retune()


def test_for_url_finds_the_shared_server(fake_start, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.setattr(EmbeddedLlamaServer, "_instances", {})
    monkeypatch.setattr(llamacpp.cpu, "free_cores", lambda interval=0.3: 1)
    server = EmbeddedLlamaServer.shared(tmp_path / "m.gguf")
    assert EmbeddedLlamaServer.for_url(server.base_url) is server
    assert EmbeddedLlamaServer.for_url("http://127.0.0.1:1/v1") is None
    assert EmbeddedLlamaServer.for_url(None) is None
    assert server.address == ("127.0.0.1", 40000)
