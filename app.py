"""Hugging Face Spaces entry point: the MetaLLMiX web app (the same as `metallmix ui`).

    python app.py          # what a Gradio Space runs (README.md's front matter: app_file: app.py)

Which LLM (`choose_llm`): $METALLMIX_LLM when set; else, on a Space ($SPACE_ID is set) where no
Ollama answers, the embedded llama.cpp backend with a small instruct GGUF from the hub
(`llamacpp:hf:...`, downloaded once into the models dir on first start; CPU only); elsewhere the
usual auto-selection (Ollama, else the cached default GGUF). Without any LLM the app still starts
and its no-LLM recommendation panel works.

Where (`launch_options`): $GRADIO_SERVER_NAME / $GRADIO_SERVER_PORT (or $PORT) as Spaces set them,
else 0.0.0.0:7860 on a Space and 127.0.0.1:7860 elsewhere. With a Space's persistent storage
mounted at /data (`space_defaults`), the run store, conversations and the downloaded model live
there and survive restarts. See docs/SPACES.md.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, MutableMapping
from pathlib import Path
from typing import Any, Optional

log = logging.getLogger("metallmix.space")

PERSISTENT_DIR = Path("/data")  # where a Space mounts its persistent storage (when enabled)
DEFAULT_PORT = 7860  # the port a Gradio Space serves


def on_space(env: Mapping[str, str]) -> bool:
    """Whether we run on a Hugging Face Space (which sets SPACE_ID, e.g. `user/metallmix`)."""
    return bool(env.get("SPACE_ID", "").strip())


def hub_gguf_spec(env: Mapping[str, str]) -> str:
    """`llamacpp:hf:OWNER/REPO/FILE.gguf` of the default GGUF (METALLMIX_GGUF_REPO / _FILE override it)."""
    from agent.configuration import DEFAULT_GGUF_FILE, DEFAULT_GGUF_REPO

    repo = env.get("METALLMIX_GGUF_REPO", "").strip() or DEFAULT_GGUF_REPO
    name = env.get("METALLMIX_GGUF_FILE", "").strip() or DEFAULT_GGUF_FILE
    return f"llamacpp:hf:{repo}/{name}"


def ollama_answers(env: Mapping[str, str]) -> bool:
    """Whether an Ollama server answers at OLLAMA_HOST (default 127.0.0.1:11434) within 0.5 s."""
    from agent.backends.ollama import list_models
    from agent.configuration import DEFAULT_OLLAMA_HOST, normalize_host

    host = normalize_host(env.get("OLLAMA_HOST", "").strip() or DEFAULT_OLLAMA_HOST)
    return list_models(host, timeout=0.5) is not None


def choose_llm(env: Mapping[str, str] = os.environ,
               ollama: Optional[Callable[[Mapping[str, str]], bool]] = None) -> Optional[str]:
    """The LLM spec the app starts with (see the module docstring); None = auto-select.
    `ollama(env)` says whether Ollama answers (default `ollama_answers`)."""
    spec = env.get("METALLMIX_LLM", "").strip()
    if spec:
        return spec
    if not on_space(env):
        return None
    if (ollama or ollama_answers)(env):
        return None  # auto-selection takes Ollama
    return hub_gguf_spec(env)


def space_defaults(env: MutableMapping[str, str], persistent: Path = PERSISTENT_DIR) -> dict[str, str]:
    """On a Space with persistent storage (a writable `persistent` folder), keep MetaLLMiX's home
    (run store, fitted meta-learner, conversations) and the downloaded models there, unless set
    otherwise; sets them in `env` and returns what it set."""
    if not on_space(env) or not (persistent.is_dir() and os.access(persistent, os.W_OK)):
        return {}
    wanted = {"METALLMIX_HOME": str(persistent / "metallmix"),
              "METALLMIX_MODELS_DIR": str(persistent / "models")}
    chosen = {k: v for k, v in wanted.items() if not env.get(k, "").strip()}
    env.update(chosen)
    return chosen


def launch_options(env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """`server_name` and `server_port` for `demo.launch` (see the module docstring)."""
    host = env.get("GRADIO_SERVER_NAME", "").strip() or ("0.0.0.0" if on_space(env) else "127.0.0.1")
    port = env.get("GRADIO_SERVER_PORT", "").strip() or env.get("PORT", "").strip()
    return {"server_name": host, "server_port": int(port) if port else DEFAULT_PORT}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for key, value in space_defaults(os.environ).items():
        log.info("persistent storage: %s=%s", key, value)
    llm = choose_llm()
    log.info("LLM: %s", llm or "auto-select")
    from ui.app import build_app

    demo = build_app(llm)
    try:
        demo.launch(**launch_options())
    finally:
        demo.advisor.close()


if __name__ == "__main__":
    main()
