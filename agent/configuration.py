"""Settings of the agent: which LLM, how it samples, where threads are checkpointed.

    cfg = AgentConfig.from_env()                 # environment variables, then defaults
    cfg = AgentConfig.from_env(llm="ollama:qwen2.5:7b-instruct", max_steps=8)   # overrides win

Environment variables (all optional):

- `METALLMIX_LLM`: the LLM spec (see `agent.llm`), e.g. `ollama:qwen2.5:3b-instruct`,
  `llamacpp:/models/qwen.gguf`, `openai:http://127.0.0.1:8080/v1#qwen`; unset = auto-select;
- `OLLAMA_HOST` (Ollama's own variable, `host:port` or a URL), `METALLMIX_OLLAMA_MODEL`;
- `METALLMIX_GGUF_REPO`, `METALLMIX_GGUF_FILE`, `METALLMIX_MODELS_DIR`: the embedded default model
  (a Hugging Face repo + file, downloaded into the models dir when the machine has internet);
- `METALLMIX_TEMPERATURE`, `METALLMIX_MAX_TOKENS`, `METALLMIX_N_CTX`, `METALLMIX_THREADS`
  (llama.cpp threads; unset = the cores other programs leave free, `agent.cpu.free_cores`, followed
  between turns), `METALLMIX_LLM_TIMEOUT`, `METALLMIX_MAX_STEPS`, `METALLMIX_CHECKPOINT_DB`;
- `METALLMIX_SERVER_DIR`: where `metallmix llm serve` daemons leave their state files
  (`agent.backends.daemon`);
- `METALLMIX_DATA_ROOTS` (see `knowledge.datasets.roots`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import platformdirs
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from knowledge import paths
from knowledge.datasets.roots import allowed_roots
from knowledge.errors import MetaLLMiXError

DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"
DEFAULT_OLLAMA_MODEL = "qwen2.5:3b-instruct"
DEFAULT_GGUF_REPO = "Qwen/Qwen2.5-1.5B-Instruct-GGUF"
DEFAULT_GGUF_FILE = "qwen2.5-1.5b-instruct-q4_k_m.gguf"

#: field name -> environment variable
ENV_VARS: dict[str, str] = {
    "llm": "METALLMIX_LLM",
    "ollama_host": "OLLAMA_HOST",
    "ollama_model": "METALLMIX_OLLAMA_MODEL",
    "gguf_repo": "METALLMIX_GGUF_REPO",
    "gguf_file": "METALLMIX_GGUF_FILE",
    "models_dir": "METALLMIX_MODELS_DIR",
    "temperature": "METALLMIX_TEMPERATURE",
    "max_tokens": "METALLMIX_MAX_TOKENS",
    "n_ctx": "METALLMIX_N_CTX",
    "threads": "METALLMIX_THREADS",
    "request_timeout": "METALLMIX_LLM_TIMEOUT",
    "max_steps": "METALLMIX_MAX_STEPS",
    "checkpoint_db": "METALLMIX_CHECKPOINT_DB",
}


def default_models_dir() -> Path:
    """Where downloaded GGUF models are kept: `<user cache>/metallmix/models`."""
    return Path(platformdirs.user_cache_dir(paths.APP)) / "models"


def _default_data_roots() -> list[Path]:
    return allowed_roots()


def normalize_host(host: str) -> str:
    """An Ollama host as a URL: `0.0.0.0:11434` -> `http://127.0.0.1:11434` (no trailing slash)."""
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = "http://" + host
    scheme, rest = host.split("://", 1)
    if rest.startswith("0.0.0.0"):  # a listen address; a client talks to the loopback
        rest = "127.0.0.1" + rest[len("0.0.0.0"):]
    if ":" not in rest.split("/", 1)[0]:
        rest = rest.split("/", 1)[0] + ":11434" + ("/" + rest.split("/", 1)[1] if "/" in rest else "")
    return f"{scheme}://{rest}"


class AgentConfig(BaseModel):
    """Everything the agent's LLM backends and graphs are configured by (immutable)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    llm: str | None = Field(None, description="LLM spec; None = auto-select")
    ollama_host: str = Field(DEFAULT_OLLAMA_HOST, description="Ollama server URL")
    ollama_model: str = Field(DEFAULT_OLLAMA_MODEL, description="Ollama model when auto-selected")
    gguf_repo: str = Field(DEFAULT_GGUF_REPO, description="Hugging Face repo of the default GGUF")
    gguf_file: str = Field(DEFAULT_GGUF_FILE, description="file of the default GGUF in that repo")
    models_dir: Path = Field(default_factory=default_models_dir,
                             description="cache of downloaded GGUF models")
    temperature: float = Field(0.0, ge=0.0, le=2.0)
    max_tokens: int = Field(1024, ge=16, le=32768, description="most tokens in one reply")
    n_ctx: int = Field(8192, ge=512, le=131072, description="context window of the embedded model")
    threads: int | None = Field(None, ge=1, le=256, description="llama.cpp threads; None = the free cores (agent.cpu)")
    request_timeout: float = Field(600.0, gt=0, description="seconds one LLM call may take")
    probe_timeout: float = Field(0.5, gt=0, description="seconds to wait for Ollama's answer")
    max_steps: int = Field(12, ge=1, le=100, description="most model/tool rounds in one turn")
    checkpoint_db: Path = Field(default_factory=lambda: paths.home() / "threads.sqlite",
                                description="SQLite file of the conversation checkpoints")
    data_roots: list[Path] = Field(default_factory=_default_data_roots,
                                   description="folders the agent may read datasets from")

    @field_validator("ollama_host")
    @classmethod
    def _host(cls, value: str) -> str:
        return normalize_host(value)

    @field_validator("llm")
    @classmethod
    def _llm(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @classmethod
    def from_env(cls, **overrides: Any) -> AgentConfig:
        """The config from the environment (see the module docstring); `overrides` win.

        Raises MetaLLMiXError (one line naming the variable) for a malformed value.
        """
        values: dict[str, Any] = {}
        for field, var in ENV_VARS.items():
            raw = os.environ.get(var)
            if raw is not None and raw.strip():
                values[field] = raw.strip()
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = str(err["loc"][0]) if err["loc"] else "config"
            source = (f"environment variable {ENV_VARS[field]}"
                      if field in ENV_VARS and field not in overrides else f"setting {field}")
            raise MetaLLMiXError(f"bad {source}={values.get(field)!r}: {err['msg']}") from None
