"""A llama.cpp server kept warm between processes: `metallmix llm serve` runs one for a GGUF file
and leaves a small state file; `metallmix ask`, `chat` and the web app attach to it instead of
loading the model themselves.

    metallmix llm serve --model /models/qwen.gguf &    # or in another terminal; Ctrl-C stops it
    metallmix ask "3,000 chest X-rays, 3 classes" --llm llamacpp:/models/qwen.gguf --thread t1
    metallmix llm status                               # which servers run, where
    metallmix llm stop                                 # SIGTERM to each (or --model PATH)

The state file is `<servers dir>/<model name>-<hash of its path>.json` (servers dir:
`$METALLMIX_SERVER_DIR`, else `<user cache>/metallmix/servers`) with the pid, host, port, model
path, context size and threads. A client trusts it only when the pid is alive AND the server
answers `/v1/models` with that model within a second; a file whose pid is dead is removed (a
crashed daemon), and the client starts the model in its own process as before. This module only
reads and writes state files (no llama.cpp); `agent.backends.llamacpp.serve_daemon` runs the
server.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import platformdirs

from knowledge import paths

log = logging.getLogger(__name__)

ENV_DIR = "METALLMIX_SERVER_DIR"


def default_dir() -> Path:
    """Where the state files live: `$METALLMIX_SERVER_DIR`, else `<user cache>/metallmix/servers`."""
    env = os.environ.get(ENV_DIR, "").strip()
    return Path(env).expanduser() if env else Path(platformdirs.user_cache_dir(paths.APP)) / "servers"


@dataclass(frozen=True)
class ServerState:
    """One running daemon, as its state file records it."""

    pid: int
    host: str
    port: int
    model: str  # the GGUF file, resolved
    n_ctx: int
    threads: int
    started: float  # time.time() when it was ready

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def model_name(self) -> str:
        """The name the server knows the model by (see `EmbeddedLlamaServer.model_name`)."""
        return Path(self.model).name.removesuffix(".gguf")


def _resolve(model: str | Path) -> Path:
    return Path(model).expanduser().resolve()


def state_path(model: str | Path, directory: Path | None = None) -> Path:
    """The state file of the daemon serving `model`."""
    resolved = _resolve(model)
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:10]
    return (directory or default_dir()) / f"{resolved.name.removesuffix('.gguf')}-{digest}.json"


def write_state(state: ServerState, directory: Path | None = None) -> Path:
    """Write `state` atomically (a reader never sees half a file); returns the file."""
    path = state_path(state.model, directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(state), fh, indent=1)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_state(path: Path) -> ServerState | None:
    """The state in `path`, or None when it is missing or not a state file."""
    try:
        data = json.loads(path.read_text())
        return ServerState(pid=int(data["pid"]), host=str(data["host"]), port=int(data["port"]),
                           model=str(data["model"]), n_ctx=int(data["n_ctx"]),
                           threads=int(data["threads"]), started=float(data["started"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def remove_state(state: ServerState, directory: Path | None = None) -> None:
    """Remove the state file of `state`, only if it still names that pid (a newer daemon's stays)."""
    path = state_path(state.model, directory)
    current = read_state(path)
    if current is not None and current.pid == state.pid:
        path.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists (signal 0; a process of another user counts as alive)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def answers(state: ServerState, timeout: float = 1.0) -> bool:
    """Whether the server of `state` answers `/v1/models` and serves its model."""
    try:
        response = httpx.get(f"{state.base_url}/models", timeout=timeout)
        if response.status_code != 200:
            return False
        ids = set()
        for entry in response.json().get("data", []):
            ids.add(entry.get("id"))
            ids.update(entry.get("aliases") or [])
    except (httpx.HTTPError, ValueError, AttributeError, TypeError):
        return False
    return state.model_name in ids


def find_server(model: str | Path, directory: Path | None = None, *,
                probe=None) -> ServerState | None:
    """The live daemon serving `model`, or None. A state file whose pid is dead is removed; one
    whose process lives but does not answer (`probe`, default `answers`: still loading, or hung)
    is left alone."""
    probe = probe or answers
    path = state_path(model, directory)
    state = read_state(path)
    if state is None:
        if path.exists():
            log.warning("ignoring unreadable server state file %s", path)
        return None
    if Path(state.model) != _resolve(model):
        return None
    if not pid_alive(state.pid):
        log.info("removing the state file of a dead llama.cpp daemon (pid %d): %s", state.pid, path)
        remove_state(state, directory)
        return None
    if not probe(state):
        log.warning("llama.cpp daemon pid %d at %s does not answer; loading the model here instead",
                    state.pid, state.base_url)
        return None
    return state


def list_servers(directory: Path | None = None, *, probe=None) -> list[tuple[ServerState, bool]]:
    """Every daemon with a state file whose pid lives, and whether it answers (`probe`, default
    `answers`); dead ones' files are removed."""
    probe = probe or answers
    directory = directory or default_dir()
    out: list[tuple[ServerState, bool]] = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        state = read_state(path)
        if state is None:
            continue
        if not pid_alive(state.pid):
            remove_state(state, directory)
            continue
        out.append((state, probe(state)))
    return out


def stop_server(state: ServerState) -> bool:
    """Ask the daemon of `state` to stop (SIGTERM; it removes its own state file)."""
    try:
        os.kill(state.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return False
    return True


__all__ = ["ENV_DIR", "ServerState", "answers", "default_dir", "find_server", "list_servers",
           "pid_alive", "read_state", "remove_state", "state_path", "stop_server", "write_state"]
