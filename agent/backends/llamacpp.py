"""llama.cpp inside this process: `xllamacpp.Server` serves a GGUF model on 127.0.0.1 with an
OpenAI-compatible API, and the agent talks to it with ChatOpenAI.

    server = EmbeddedLlamaServer.shared("/models/qwen.gguf", n_ctx=8192, threads=2)
    server.base_url            # "http://127.0.0.1:<free port>/v1"

One server per model file per process (`shared`), stopped when the process exits. Jinja chat
templates are on, so the model's own tool-calling template formats the tools.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from pathlib import Path

import httpx

from agent.llm import LLMUnavailable

log = logging.getLogger(__name__)


class EmbeddedLlamaServer:
    """A llama.cpp server for one GGUF file, running on a thread of this process."""

    _instances: dict[Path, EmbeddedLlamaServer] = {}
    _lock = threading.Lock()

    def __init__(self, gguf_path: str | Path, n_ctx: int = 8192, threads: int | None = None,
                 ready_timeout: float = 120.0) -> None:
        self.gguf_path = Path(gguf_path).expanduser().resolve()
        self.n_ctx = n_ctx
        self.threads = threads
        self.ready_timeout = ready_timeout
        self.start_seconds: float | None = None
        self._server = None  # xllamacpp.Server while running
        self._address: str | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def shared(cls, gguf_path: str | Path, n_ctx: int = 8192,
               threads: int | None = None) -> EmbeddedLlamaServer:
        """The process-wide running server for `gguf_path` (started on first use)."""
        key = Path(gguf_path).expanduser().resolve()
        with cls._lock:
            server = cls._instances.get(key)
            if server is None or not server.running:
                server = cls(key, n_ctx=n_ctx, threads=threads)
                server.start()
                cls._instances[key] = server
            return server

    @classmethod
    def stop_all(cls) -> None:
        """Stop every shared server (run at interpreter exit)."""
        with cls._lock:
            for server in cls._instances.values():
                server.stop()
            cls._instances.clear()

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> EmbeddedLlamaServer:
        """Load the model and serve it on a free port of 127.0.0.1; returns when it answers.

        Raises LLMUnavailable (one line naming the file) when the file is missing or unreadable.
        """
        if self.running:
            return self
        if not self.gguf_path.is_file():
            raise LLMUnavailable(f"GGUF model file not found: {self.gguf_path}")
        try:
            import xllamacpp
        except ImportError as exc:  # pragma: no cover - a dependency of the project
            raise LLMUnavailable(f"the embedded llama.cpp backend needs xllamacpp ({exc})") from exc
        params = xllamacpp.CommonParams()
        params.model.path = str(self.gguf_path)
        params.model_alias = self.model_name
        params.hostnames = ["127.0.0.1"]
        params.port = 0  # the OS picks a free port; listening_address says which
        params.n_ctx = self.n_ctx
        params.n_parallel = 1
        params.use_jinja = True
        params.warmup = False
        params.verbosity = 0 if not log.isEnabledFor(logging.DEBUG) else 3
        if self.threads:
            params.cpuparams.n_threads = self.threads
            params.cpuparams_batch.n_threads = self.threads
        t0 = time.perf_counter()
        try:
            self._server = xllamacpp.Server(params)
        except Exception as exc:  # noqa: BLE001 - llama.cpp reports a bad file as RuntimeError
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise LLMUnavailable(f"llama.cpp could not load {self.gguf_path}: {first}") from exc
        self._address = str(self._server.listening_address).rstrip("/")
        self._wait_ready()
        self.start_seconds = time.perf_counter() - t0
        log.info("llama.cpp serving %s at %s (%.1f s)", self.gguf_path.name, self._address,
                 self.start_seconds)
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            try:
                if httpx.get(f"{self._address}/health", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise LLMUnavailable(f"llama.cpp server for {self.gguf_path} did not become ready "
                                     f"within {self.ready_timeout:.0f} s")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop serving and free the model (idempotent)."""
        server, self._server, self._address = self._server, None, None
        if server is not None:
            del server  # ~Server stops the main loop and frees the model

    # --- addresses -------------------------------------------------------------------------------

    @property
    def model_name(self) -> str:
        """The name the server knows the model by: the file name without `.gguf`."""
        return self.gguf_path.name.removesuffix(".gguf")

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API root, e.g. `http://127.0.0.1:41234/v1`."""
        if self._address is None:
            raise LLMUnavailable(f"llama.cpp server for {self.gguf_path} is not running")
        return f"{self._address}/v1"

    def __repr__(self) -> str:
        state = self._address or "stopped"
        return f"EmbeddedLlamaServer({self.gguf_path.name!r}, {state})"


atexit.register(EmbeddedLlamaServer.stop_all)


# --- where GGUF files come from ------------------------------------------------------------------

def cached_gguf(repo: str, filename: str, models_dir: Path) -> Path | None:
    """The file of `repo` already downloaded into `models_dir`, or None (no network)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename, cache_dir=models_dir)
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the Hugging Face Hub answers at all (one quick request, no retries)."""
    import os

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true"):
        return False
    try:
        httpx.head(constants.ENDPOINT, timeout=timeout, follow_redirects=True)
    except httpx.HTTPError:
        return False
    return True


def download_gguf(repo: str, filename: str, models_dir: Path) -> Path:
    """`filename` of Hugging Face repo `repo`, downloaded into `models_dir` unless already there
    (with a progress bar). Raises LLMUnavailable when it can be neither found nor downloaded."""
    found = cached_gguf(repo, filename, models_dir)
    if found is not None:
        return found
    if not hub_reachable():
        raise LLMUnavailable(f"cannot download {repo}/{filename}: the Hugging Face Hub is not "
                             "reachable from this machine")
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    log.info("downloading %s/%s into %s", repo, filename, models_dir)
    try:
        return Path(hf_hub_download(repo, filename, cache_dir=models_dir))
    except (HfHubHTTPError, OSError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise LLMUnavailable(f"cannot download {repo}/{filename}: {first}") from exc
