"""llama.cpp inside this process: `xllamacpp.Server` serves a GGUF model on 127.0.0.1 with an
OpenAI-compatible API, and the agent talks to it with ChatOpenAI.

    server = EmbeddedLlamaServer.shared("/models/qwen.gguf", n_ctx=8192, threads=2)
    server.base_url            # "http://127.0.0.1:<free port>/v1"

One server per model file per process (`shared`), stopped when the process exits. Jinja chat
templates are on, so the model's own tool-calling template formats the tools.

Speed on a shared CPU:

- threads: `threads` when given (METALLMIX_THREADS), else `agent.cpu.free_cores()`: the cores
  other programs leave free when the server starts (2 threads on 2 cores with one core busy run
  several times slower than 1 thread);
- prompt cache: one slot (`n_parallel=1`) whose KV cache keeps the previous prompt, so a request
  sharing its prefix (the same system prompt, the conversation so far) only evaluates the new
  tokens (`cache_prompt`, on by default in llama.cpp and sent with every request by `agent.llm`);
  llama.cpp also keeps a few earlier prompts' states in RAM (`cache_ram_mib`) for prompts that
  alternate (extraction, answer, follow-up);
- kept warm: one server per process (`shared`) serves every turn of `metallmix chat` and of the
  web app; `serve_daemon` (`metallmix llm serve`) keeps one for other processes (`metallmix ask`),
  found through `agent.backends.daemon`.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from agent import cpu
from agent.backends import daemon
from agent.llm import LLMUnavailable

log = logging.getLogger(__name__)


class EmbeddedLlamaServer:
    """A llama.cpp server for one GGUF file, running on a thread of this process."""

    _instances: dict[Path, EmbeddedLlamaServer] = {}
    _lock = threading.Lock()

    def __init__(self, gguf_path: str | Path, n_ctx: int = 8192, threads: int | None = None,
                 ready_timeout: float = 120.0, port: int = 0) -> None:
        self.gguf_path = Path(gguf_path).expanduser().resolve()
        self.n_ctx = n_ctx
        self.threads = threads  # as configured; None = `agent.cpu.free_cores()` at start
        self.threads_used: int | None = None  # what the running server uses
        self.port = port  # 0 = a free port
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

    @classmethod
    def for_url(cls, base_url: str | None) -> EmbeddedLlamaServer | None:
        """The running shared server of this process at `base_url`, if any."""
        with cls._lock:
            for server in cls._instances.values():
                if server.running and base_url and server.base_url == base_url:
                    return server
        return None

    def retune(self, interval: float = 0.3) -> bool:
        """With automatic threads (`threads=None`): when `agent.cpu.free_cores()` now differs from
        the threads the server runs with, restart it with that many on the same address (the
        chat models built on `base_url` keep working; the model is reloaded from the page cache
        in a few seconds and the prompt cache is lost). Returns whether it restarted.

        Why: llama.cpp's threads are fixed when it starts, and a server started on a quiet machine
        generated ~10x slower with 2 threads than with 1 once another program kept a core busy
        (0.55 vs 6.1 tokens/s, `eval/results/turn_speed.json`). Call it between requests only."""
        if self.threads or not self.running:
            return False
        wanted = cpu.free_cores(interval)
        if wanted == self.threads_used:
            return False
        _, port = self.address
        log.info("restarting llama.cpp with %d threads instead of %s (free cores changed)", wanted,
                 self.threads_used)
        self.stop()
        self.port = port
        self.start(threads=wanted)
        return True

    def start(self, threads: int | None = None) -> EmbeddedLlamaServer:
        """Load the model and serve it on a free port of 127.0.0.1 (or `port`); returns when it
        answers. `threads`: this start's thread count (default: the configured one, else the free
        cores).

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
        # a set of names in recent xllamacpp (a str there became a set of its letters), a str before
        params.model_alias = ({self.model_name} if isinstance(params.model_alias, (set, list))
                              else self.model_name)
        params.hostnames = ["127.0.0.1"]
        params.port = self.port  # 0: the OS picks a free port; listening_address says which
        params.n_ctx = self.n_ctx
        params.n_parallel = 1
        params.use_jinja = True
        params.warmup = False
        params.verbosity = 0 if not log.isEnabledFor(logging.DEBUG) else 3
        self.threads_used = threads or cpu.llama_threads(self.threads)
        params.cpuparams.n_threads = self.threads_used
        params.cpuparams_batch.n_threads = self.threads_used
        t0 = time.perf_counter()
        try:
            self._server = xllamacpp.Server(params)
        except Exception as exc:  # noqa: BLE001 - llama.cpp reports a bad file as RuntimeError
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise LLMUnavailable(f"llama.cpp could not load {self.gguf_path}: {first}") from exc
        self._address = str(self._server.listening_address).rstrip("/")
        self._wait_ready()
        self.start_seconds = time.perf_counter() - t0
        log.info("llama.cpp serving %s at %s with %d threads (%.1f s)", self.gguf_path.name,
                 self._address, self.threads_used, self.start_seconds)
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

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) the server listens on."""
        if self._address is None:
            raise LLMUnavailable(f"llama.cpp server for {self.gguf_path} is not running")
        parts = urlsplit(self._address)
        return parts.hostname or "127.0.0.1", int(parts.port or 80)

    def __repr__(self) -> str:
        state = self._address or "stopped"
        return f"EmbeddedLlamaServer({self.gguf_path.name!r}, {state})"


atexit.register(EmbeddedLlamaServer.stop_all)


# --- a daemon for other processes ----------------------------------------------------------------

def serve_daemon(gguf_path: str | Path, n_ctx: int = 8192, threads: int | None = None,
                 port: int = 0, directory: Path | None = None, *,
                 ready: threading.Event | None = None, stop: threading.Event | None = None,
                 announce=print) -> int:
    """Serve `gguf_path` until SIGINT/SIGTERM (or `stop` is set), with a state file that lets other
    processes attach (`agent.backends.daemon`); returns the exit code (1: one already serves it).

    The state file is written once the server answers and removed when it stops."""
    existing = daemon.find_server(gguf_path, directory)
    if existing is not None:
        announce(f"already serving {existing.model_name} at {existing.base_url} (pid {existing.pid})")
        return 1
    server = EmbeddedLlamaServer(gguf_path, n_ctx=n_ctx, threads=threads, port=port)
    server.start()
    host, bound = server.address
    state = daemon.ServerState(pid=os.getpid(), host=host, port=bound, model=str(server.gguf_path),
                               n_ctx=n_ctx, threads=server.threads_used or 0, started=time.time())
    stop = stop or threading.Event()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    path = daemon.write_state(state, directory)
    try:
        announce(f"serving {server.model_name} at {server.base_url} with {state.threads} threads "
                 f"(pid {state.pid}, state {path}); Ctrl-C or `metallmix llm stop` stops it")
        if ready is not None:
            ready.set()
        while not stop.wait(0.5):
            pass
    finally:
        daemon.remove_state(state, directory)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.stop()
    return 0


# --- where GGUF files come from ------------------------------------------------------------------

def cached_gguf(repo: str, filename: str, models_dir: Path) -> Path | None:
    """The file of `repo` already downloaded into `models_dir`, or None (no network)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo, filename, cache_dir=models_dir)
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether the Hugging Face Hub answers at all (one quick request, no retries)."""
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
