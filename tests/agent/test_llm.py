"""LLM specs, backend auto-selection, and (slow) the embedded llama.cpp server for real."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent import llm
from agent.configuration import AgentConfig, normalize_host
from agent.llm import BackendInfo, LLMSpec, LLMSpecError, LLMUnavailable, get_chat_model, parse_spec
from agent.toolcalls import ToolCallingModel, normalize_ai_message
from knowledge.errors import MetaLLMiXError

REPO = Path(__file__).resolve().parents[2]


# --- specs ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "expected"), [
    ("ollama:qwen2.5:3b-instruct", LLMSpec("ollama", "qwen2.5:3b-instruct")),
    ("ollama:hf.co/bartowski/Qwen:Q4_K_M", LLMSpec("ollama", "hf.co/bartowski/Qwen:Q4_K_M")),
    ("llamacpp:/models/qwen.gguf", LLMSpec("llamacpp", "/models/qwen.gguf")),
    ("LlamaCpp: /models/Qwen.GGUF ", LLMSpec("llamacpp", "/models/Qwen.GGUF")),
    ("llamacpp:hf:Qwen/Qwen2.5-1.5B-Instruct-GGUF/qwen2.5-1.5b-instruct-q4_k_m.gguf",
     LLMSpec("llamacpp", "qwen2.5-1.5b-instruct-q4_k_m.gguf",
             hf_repo="Qwen/Qwen2.5-1.5B-Instruct-GGUF", hf_file="qwen2.5-1.5b-instruct-q4_k_m.gguf")),
    ("llamacpp:hf:o/r/sub/m.gguf", LLMSpec("llamacpp", "m.gguf", hf_repo="o/r", hf_file="sub/m.gguf")),
    ("openai:http://127.0.0.1:8080/v1#qwen", LLMSpec("openai", "qwen", "http://127.0.0.1:8080/v1")),
    ("openai:https://api.example.com/v1/#gpt-4o-mini",
     LLMSpec("openai", "gpt-4o-mini", "https://api.example.com/v1")),
    ("scripted:/tmp/replies.json", LLMSpec("scripted", "/tmp/replies.json")),
])
def test_parse_spec(spec: str, expected: LLMSpec) -> None:
    assert parse_spec(spec) == expected


@pytest.mark.parametrize(("spec", "words"), [
    ("", "expected ollama:MODEL"),
    ("qwen2.5", "expected ollama:MODEL"),
    ("gpt:foo", "expected ollama:MODEL"),
    ("ollama:", "nothing after 'ollama:'"),
    ("ollama:qwen 2.5", "not an Ollama model name"),
    ("llamacpp:/models/qwen.bin", "needs a .gguf file"),
    ("llamacpp:hf:Qwen/model.gguf", "OWNER/REPO/FILE.gguf"),
    ("llamacpp:hf:Qwen/repo/README.md", "OWNER/REPO/FILE.gguf"),
    ("openai:http://127.0.0.1:8080/v1", "openai:BASE_URL#MODEL"),
    ("openai:http://127.0.0.1:8080/v1#", "openai:BASE_URL#MODEL"),
    ("openai:127.0.0.1:8080/v1#qwen", "must start with http"),
    ("scripted:", "nothing after"),
])
def test_bad_specs(spec: str, words: str) -> None:
    with pytest.raises(LLMSpecError, match="bad LLM spec") as info:
        parse_spec(spec)
    assert words in str(info.value) and "\n" not in str(info.value)
    assert isinstance(info.value, MetaLLMiXError)


# --- configuration -------------------------------------------------------------------------------

def test_config_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("METALLMIX_LLM", "ollama:qwen2.5:7b")
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0:11500")
    monkeypatch.setenv("METALLMIX_THREADS", "2")
    monkeypatch.setenv("METALLMIX_DATA_ROOTS", str(tmp_path))
    cfg = AgentConfig.from_env(max_steps=5)
    assert cfg.llm == "ollama:qwen2.5:7b" and cfg.threads == 2 and cfg.max_steps == 5
    assert cfg.ollama_host == "http://127.0.0.1:11500"
    assert cfg.temperature == 0.0
    assert cfg.checkpoint_db == Path(os.environ["METALLMIX_HOME"]) / "threads.sqlite"
    assert cfg.data_roots == [tmp_path.resolve()]


def test_config_bad_env_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("METALLMIX_MAX_TOKENS", "lots")
    with pytest.raises(MetaLLMiXError, match="METALLMIX_MAX_TOKENS='lots'"):
        AgentConfig.from_env()


@pytest.mark.parametrize(("host", "url"), [
    ("127.0.0.1:11434", "http://127.0.0.1:11434"),
    ("localhost", "http://localhost:11434"),
    ("http://gpu-box:8000/", "http://gpu-box:8000"),
    ("https://ollama.example.com:443", "https://ollama.example.com:443"),
])
def test_normalize_host(host: str, url: str) -> None:
    assert normalize_host(host) == url


# --- auto-selection with a fake Ollama -----------------------------------------------------------

@pytest.fixture
def fake_ollama() -> Iterator[tuple[str, list[str]]]:
    """A tiny HTTP server on 127.0.0.1 that answers /api/tags like Ollama (models: the list)."""
    models: list[str] = ["qwen2.5:3b-instruct", "llama3.2:latest"]

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            if self.path != "/api/tags":
                self.send_error(404)
                return
            body = json.dumps({"models": [{"name": m, "model": m} for m in models]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", models
    server.shutdown()
    server.server_close()


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("METALLMIX_LLM", raising=False)


def _config(host: str, tmp_path: Path, **kw: object) -> AgentConfig:
    return AgentConfig(ollama_host=host, models_dir=tmp_path / "models", **kw)


def test_auto_picks_ollama_when_it_answers(fake_ollama, offline, tmp_path: Path) -> None:
    from langchain_ollama import ChatOllama

    host, _ = fake_ollama
    model, info = get_chat_model(config=_config(host, tmp_path))
    assert isinstance(model, ToolCallingModel) and isinstance(model.inner, ChatOllama)
    assert model.inner.model == "qwen2.5:3b-instruct" and model.inner.base_url == host
    assert info == BackendInfo("ollama", "qwen2.5:3b-instruct", host,
                               f"qwen2.5:3b-instruct (Ollama at {host})")


def test_explicit_ollama_model(fake_ollama, offline, tmp_path: Path) -> None:
    host, _ = fake_ollama
    _, info = get_chat_model("ollama:llama3.2", _config(host, tmp_path))
    assert info.kind == "ollama" and info.model == "llama3.2"
    with pytest.raises(LLMUnavailable, match="ollama pull mistral:7b"):
        get_chat_model("ollama:mistral:7b", _config(host, tmp_path))


def test_explicit_ollama_not_running(offline, tmp_path: Path) -> None:
    with pytest.raises(LLMUnavailable, match="Ollama is not running"):
        get_chat_model("ollama:qwen2.5:3b-instruct", _config(_closed_port_url(), tmp_path))


def _assert_unavailable_message(text: str, *expected: str) -> None:
    assert "\n" not in text
    for words in ("no LLM available", "ollama pull qwen2.5:3b-instruct",
                  "--llm llamacpp:/path/to/model.gguf", "METALLMIX_LLM",
                  "`metallmix recommend` works without any LLM", *expected):
        assert words in text, words


def test_nothing_available(offline, tmp_path: Path) -> None:
    host = _closed_port_url()
    with pytest.raises(LLMUnavailable) as info:
        get_chat_model(config=_config(host, tmp_path))
    _assert_unavailable_message(str(info.value), f"Ollama is not running at {host}",
                                "Hugging Face Hub is not reachable")


def test_ollama_without_the_default_model_falls_through(fake_ollama, offline,
                                                        tmp_path: Path) -> None:
    host, models = fake_ollama
    models.remove("qwen2.5:3b-instruct")
    with pytest.raises(LLMUnavailable) as info:
        get_chat_model(config=_config(host, tmp_path))
    _assert_unavailable_message(str(info.value), "does not have qwen2.5:3b-instruct")


class _FakeServer:
    """Stands in for EmbeddedLlamaServer (no model is loaded)."""

    def __init__(self, path: Path) -> None:
        self.gguf_path = path
        self.model_name = path.name.removesuffix(".gguf")
        self.base_url = "http://127.0.0.1:9/v1"


def test_auto_uses_the_cached_default_gguf(offline, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from langchain_openai import ChatOpenAI

    from agent.backends.llamacpp import EmbeddedLlamaServer

    cfg = _config(_closed_port_url(), tmp_path, threads=2)
    # the Hugging Face cache layout hf_hub_download leaves behind
    repo_dir = cfg.models_dir / ("models--" + cfg.gguf_repo.replace("/", "--"))
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text("abc123")
    gguf = repo_dir / "snapshots" / "abc123" / cfg.gguf_file
    gguf.parent.mkdir(parents=True)
    gguf.write_bytes(b"GGUF")
    started: list[tuple] = []

    def shared(path, n_ctx=8192, threads=None):  # noqa: ANN001, ANN202
        started.append((Path(path), n_ctx, threads))
        return _FakeServer(Path(path))

    monkeypatch.setattr(EmbeddedLlamaServer, "shared", staticmethod(shared))
    model, info = get_chat_model(config=cfg)
    assert started == [(gguf, 8192, 2)]
    assert isinstance(model.inner, ChatOpenAI)
    assert model.inner.openai_api_base == "http://127.0.0.1:9/v1"
    assert info.kind == "llamacpp" and info.base_url == "http://127.0.0.1:9/v1"
    assert "llama.cpp in-process, 2 threads" in info.description


def test_spec_from_env_wins_over_auto(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from langchain_openai import ChatOpenAI

    monkeypatch.setenv("METALLMIX_LLM", "openai:http://127.0.0.1:1/v1#tiny")
    model, info = get_chat_model(config=AgentConfig.from_env(ollama_host=_closed_port_url()))
    assert isinstance(model.inner, ChatOpenAI) and model.inner.model_name == "tiny"
    assert info == BackendInfo("openai", "tiny", "http://127.0.0.1:1/v1",
                               "tiny (OpenAI-compatible server at http://127.0.0.1:1/v1)")


def test_missing_files(offline, tmp_path: Path) -> None:
    cfg = _config(_closed_port_url(), tmp_path)
    with pytest.raises(LLMUnavailable, match="GGUF model file not found: .*nope.gguf"):
        get_chat_model(f"llamacpp:{tmp_path / 'nope.gguf'}", cfg)
    with pytest.raises(LLMUnavailable, match="script of replies not found"):
        get_chat_model(f"scripted:{tmp_path / 'nope.json'}", cfg)
    with pytest.raises(LLMUnavailable, match="Hugging Face Hub is not reachable"):
        get_chat_model("llamacpp:hf:Qwen/Repo-GGUF/m.gguf", cfg)


def test_unavailable_message_lists_reasons() -> None:
    text = llm.unavailable_message(AgentConfig(ollama_model="phi3:mini"), ["a failed", "b failed"])
    assert "(a failed; b failed)" in text and "ollama pull phi3:mini" in text


# --- the real embedded llama.cpp server ----------------------------------------------------------

SMALL_GGUF = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"


def small_gguf() -> Path:
    """The 0.5B test model (fetched by ../shared/tools/fetch-test-llm if needed), or skip."""
    cache = Path(os.environ.get("METALLMIX_TEST_LLM_DIR")
                 or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                 / "metallmix-test-llm")
    if (cache / SMALL_GGUF).is_file():
        return cache / SMALL_GGUF
    fetch = REPO.parent / "shared" / "tools" / "fetch-test-llm"
    if not fetch.exists():
        pytest.skip(f"test LLM not available: {cache / SMALL_GGUF} (and no {fetch})")
    try:
        out = subprocess.run([str(fetch), "small"], capture_output=True, text=True, timeout=600,
                             check=True).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"test LLM could not be fetched: {exc}")
    path = Path(out[-1]) if out else cache / SMALL_GGUF
    if not path.is_file():
        pytest.skip(f"test LLM not available: {path}")
    return path


@pytest.mark.slow
@pytest.mark.real_llm
def test_embedded_llamacpp_tool_call(tmp_path: Path) -> None:
    from langchain_core.messages import HumanMessage, SystemMessage

    from agent.backends.llamacpp import EmbeddedLlamaServer
    from tools import get_tools

    gguf = small_gguf()
    cfg = AgentConfig(threads=2, n_ctx=4096, max_tokens=128, models_dir=tmp_path)
    model, info = get_chat_model(f"llamacpp:{gguf}", cfg)
    assert info.kind == "llamacpp" and info.base_url.startswith("http://127.0.0.1:")
    server = EmbeddedLlamaServer.shared(gguf)
    assert server.running and server.base_url == info.base_url  # one server per model file
    tools = get_tools(training_tool=False, names=["analyze_dataset"])
    bound = model.bind_tools(tools)
    prompt = [SystemMessage(content="You are an assistant. Call a tool when it helps."),
              HumanMessage(content="Please analyze the dataset file data/chest_xray.npz.")]
    try:
        for _ in range(2):  # a 0.5B model may need a second try
            reply = bound.invoke(prompt)
            # the wrapper has normalized already; normalizing again changes nothing
            assert normalize_ai_message(reply, ["analyze_dataset"]) is reply
            if reply.tool_calls:
                break
        [call] = reply.tool_calls
        assert call["name"] == "analyze_dataset"
        assert "chest_xray" in str(call["args"].get("path", ""))
        assert call["id"]
    finally:
        server.stop()
    assert not server.running


def test_scripted_backend_normalizes_text_calls(tmp_path: Path) -> None:
    script = tmp_path / "replies.json"
    script.write_text(json.dumps([
        '```json\n{"name": "analyze_dataset", "arguments": {"path": "x.npz"}}\n```',
        "Done.",
    ]))
    model, info = get_chat_model(f"scripted:{script}", _config(_closed_port_url(), tmp_path))
    assert info == BackendInfo("scripted", str(script), None, "scripted replies from replies.json")
    bound = model.bind_tools([_analyze_dataset])
    first = bound.invoke("analyze x.npz")
    assert [(c["name"], c["args"]) for c in first.tool_calls] == [("analyze_dataset",
                                                                   {"path": "x.npz"})]
    assert first.content == ""
    assert bound.invoke("thanks").content == "Done."


def _analyze_dataset(path: str) -> str:
    """Measure a dataset file."""
    return path


_analyze_dataset.__name__ = "analyze_dataset"
