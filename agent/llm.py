"""Which chat model the agent talks to, from one spec string.

    model, info = get_chat_model("ollama:qwen2.5:3b-instruct")
    model, info = get_chat_model()          # METALLMIX_LLM, else auto-select

Specs:

- `ollama:MODEL`                    a model pulled into a local Ollama (`OLLAMA_HOST`);
- `llamacpp:/path/to/model.gguf`    llama.cpp embedded in this process (no server to install), or
                                   the `metallmix llm serve` daemon for that file when one runs;
- `llamacpp:hf:OWNER/REPO/FILE.gguf` the same, downloaded from Hugging Face into the models dir;
- `openai:BASE_URL#MODEL`           any OpenAI-compatible server, e.g. `openai:http://127.0.0.1:8080/v1#qwen`;
- `scripted:FILE`                   canned replies for tests (`agent.testing.ScriptedChatModel`).

Unset, the first that works: Ollama (if it answers and has the default model), then embedded
llama.cpp with the default GGUF (cached, or downloadable); else `LLMUnavailable` says how to get
one. Every model comes wrapped in `ToolCallingModel`, so tool calls a small model writes as text
become real tool calls.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from langchain_core.language_models import BaseChatModel

from agent.backends import daemon, ollama, openai
from agent.configuration import AgentConfig
from agent.testing import ScriptedChatModel
from agent.toolcalls import ToolCallingModel
from knowledge.errors import MetaLLMiXError

log = logging.getLogger(__name__)

Kind = Literal["ollama", "llamacpp", "openai", "scripted"]
KINDS: tuple[str, ...] = ("ollama", "llamacpp", "openai", "scripted")


class LLMError(MetaLLMiXError):
    """Base of the errors about the agent's LLM."""


class LLMSpecError(LLMError):
    """An LLM spec (`--llm`, `METALLMIX_LLM`) that does not parse."""


class LLMUnavailable(LLMError):
    """No usable LLM: none configured answers, or the one asked for cannot be started."""


@dataclass(frozen=True)
class LLMSpec:
    """A parsed spec. `model` is the Ollama/OpenAI model name, the GGUF path or the script file;
    `hf_repo`/`hf_file` are set for `llamacpp:hf:...`."""

    kind: Kind
    model: str
    base_url: str | None = None
    hf_repo: str | None = None
    hf_file: str | None = None


@dataclass(frozen=True)
class BackendInfo:
    """What the agent is talking to, for display (`description`) and logs."""

    kind: Kind
    model: str
    base_url: str | None
    description: str


SPEC_HELP = ("expected ollama:MODEL, llamacpp:/path/model.gguf, llamacpp:hf:OWNER/REPO/FILE.gguf, "
             "openai:BASE_URL#MODEL or scripted:FILE")


def parse_spec(spec: str) -> LLMSpec:
    """`spec` as an LLMSpec; LLMSpecError (one line naming the spec) when it is malformed."""
    text = spec.strip()
    kind, sep, rest = text.partition(":")
    kind = kind.strip().lower()
    rest = rest.strip()
    if not sep or kind not in KINDS:
        raise LLMSpecError(f"bad LLM spec {spec!r}: {SPEC_HELP}")
    if not rest:
        raise LLMSpecError(f"bad LLM spec {spec!r}: nothing after '{kind}:'; {SPEC_HELP}")
    if kind == "ollama":
        if any(c.isspace() for c in rest) or rest.startswith(("/", ".", ":")):
            raise LLMSpecError(f"bad LLM spec {spec!r}: not an Ollama model name")
        return LLMSpec("ollama", rest)
    if kind == "llamacpp":
        if rest.startswith("hf:"):
            parts = [p for p in rest[3:].split("/") if p]
            if len(parts) < 3 or not parts[-1].lower().endswith(".gguf"):
                raise LLMSpecError(f"bad LLM spec {spec!r}: expected llamacpp:hf:OWNER/REPO/FILE.gguf")
            return LLMSpec("llamacpp", parts[-1], hf_repo="/".join(parts[:2]),
                           hf_file="/".join(parts[2:]))
        if not rest.lower().endswith(".gguf"):
            raise LLMSpecError(f"bad LLM spec {spec!r}: llamacpp needs a .gguf file")
        return LLMSpec("llamacpp", str(Path(rest).expanduser()))
    if kind == "openai":
        url, hash_, model = rest.rpartition("#")
        if not hash_ or not url.strip() or not model.strip():
            raise LLMSpecError(f"bad LLM spec {spec!r}: expected openai:BASE_URL#MODEL")
        if not url.startswith(("http://", "https://")):
            raise LLMSpecError(f"bad LLM spec {spec!r}: the base URL must start with http:// "
                               "or https://")
        return LLMSpec("openai", model.strip(), base_url=url.strip().rstrip("/"))
    return LLMSpec("scripted", str(Path(rest).expanduser()))


def unavailable_message(config: AgentConfig, reasons: list[str]) -> str:
    """The one-line LLMUnavailable message: what was tried, and how to get an LLM."""
    tried = "; ".join(reasons) if reasons else "nothing configured"
    return (f"no LLM available ({tried}). Get one: install Ollama (https://ollama.com) and run "
            f"`ollama pull {config.ollama_model}`, or pass `--llm llamacpp:/path/to/model.gguf`, "
            "or set METALLMIX_LLM; `metallmix recommend` works without any LLM")


def get_chat_model(spec: str | None = None,
                   config: AgentConfig | None = None) -> tuple[BaseChatModel, BackendInfo]:
    """The chat model for `spec` (default: `config.llm`, i.e. METALLMIX_LLM, else auto-select),
    wrapped in `ToolCallingModel`, and what it is.

    Raises LLMSpecError for a malformed spec and LLMUnavailable when the model cannot be had.
    """
    config = config or AgentConfig.from_env()
    spec = spec or config.llm
    if spec:
        model, info = _build(parse_spec(spec), config)
    else:
        model, info = _auto(config)
    log.info("LLM: %s", info.description)
    return ToolCallingModel(inner=model), info


def with_max_tokens(model: BaseChatModel, limit: int) -> BaseChatModel:
    """`model` replying with at most `limit` tokens (or its own lower limit): a copy of the chat
    model with `max_tokens` (OpenAI-compatible, llama.cpp) or `num_predict` (Ollama) lowered.
    Models without such a setting (scripted, fakes) come back unchanged.

    Why: each reply of a small local model costs ~0.2-1 s per token on a CPU, and a structured
    extraction or a one-line question needs a few dozen; a runaway reply is cut early."""
    if isinstance(model, ToolCallingModel):
        if not isinstance(model.inner, BaseChatModel):
            return model
        return ToolCallingModel(inner=with_max_tokens(model.inner, limit), tool_names=model.tool_names)
    for field in ("max_tokens", "num_predict"):
        if field in type(model).model_fields:
            current = getattr(model, field)
            if current is None or current > limit:
                return model.model_copy(update={field: limit})
            return model
    return model


def _build(spec: LLMSpec, config: AgentConfig) -> tuple[BaseChatModel, BackendInfo]:
    if spec.kind == "ollama":
        return _ollama(spec.model, config, require=True)
    if spec.kind == "llamacpp":
        if spec.hf_repo and spec.hf_file:
            from agent.backends.llamacpp import download_gguf  # lazy: import cycle (it imports agent.llm)

            path = download_gguf(spec.hf_repo, spec.hf_file, config.models_dir)
        else:
            path = Path(spec.model)
        return _llamacpp(path, config)
    if spec.kind == "openai":
        assert spec.base_url is not None
        model = openai.chat_model(spec.base_url, spec.model, temperature=config.temperature,
                                  max_tokens=config.max_tokens, timeout=config.request_timeout)
        return model, BackendInfo("openai", spec.model, spec.base_url,
                                  f"{spec.model} (OpenAI-compatible server at {spec.base_url})")
    return _scripted(Path(spec.model))


def _ollama(model_name: str, config: AgentConfig,
            require: bool) -> tuple[BaseChatModel, BackendInfo]:
    """ChatOllama for `model_name`; LLMUnavailable when Ollama does not answer or lacks it."""
    host = config.ollama_host
    available = ollama.list_models(host, timeout=max(config.probe_timeout, 2.0 if require else 0))
    if available is None:
        raise LLMUnavailable(f"Ollama is not running at {host} (start it with `ollama serve`, "
                             "or set OLLAMA_HOST)")
    if not ollama.has_model(available, model_name):
        raise LLMUnavailable(f"Ollama at {host} does not have {model_name}: run "
                             f"`ollama pull {model_name}`")
    model = ollama.chat_model(model_name, host, temperature=config.temperature,
                              max_tokens=config.max_tokens, n_ctx=config.n_ctx,
                              timeout=config.request_timeout)
    return model, BackendInfo("ollama", model_name, host, f"{model_name} (Ollama at {host})")


#: sent with every llama.cpp request: reuse the KV cache of the prompt prefix the previous request
#: shared (llama.cpp's default too; explicit so that an older server does it as well)
LLAMACPP_EXTRA_BODY = {"cache_prompt": True}


def _llamacpp(path: Path, config: AgentConfig) -> tuple[BaseChatModel, BackendInfo]:
    """ChatOpenAI on the `metallmix llm serve` daemon for `path` when one answers, else on the
    shared embedded llama.cpp server for `path` (started if needed)."""
    from agent.backends.llamacpp import EmbeddedLlamaServer  # lazy: import cycle (it imports agent.llm)

    found = daemon.find_server(path) if Path(path).is_file() else None
    if found is not None:
        model = openai.chat_model(found.base_url, found.model_name, temperature=config.temperature,
                                  max_tokens=config.max_tokens, timeout=config.request_timeout,
                                  api_key="none", max_retries=0, extra_body=LLAMACPP_EXTRA_BODY)
        return model, BackendInfo("llamacpp", found.model, found.base_url,
                                  f"{found.model_name} (llama.cpp daemon pid {found.pid}, "
                                  f"{found.threads} threads)")
    server = EmbeddedLlamaServer.shared(path, n_ctx=config.n_ctx, threads=config.threads)
    model = openai.chat_model(server.base_url, server.model_name, temperature=config.temperature,
                              max_tokens=config.max_tokens, timeout=config.request_timeout,
                              api_key="none", max_retries=0, extra_body=LLAMACPP_EXTRA_BODY)
    used = getattr(server, "threads_used", None)
    threads = (f"{config.threads} threads" if config.threads
               else f"{used} threads (free cores)" if used else "auto threads")
    return model, BackendInfo("llamacpp", str(server.gguf_path), server.base_url,
                              f"{server.model_name} (llama.cpp in-process, {threads})")


def _scripted(path: Path) -> tuple[BaseChatModel, BackendInfo]:
    if not path.is_file():
        raise LLMUnavailable(f"script of replies not found: {path}")
    model = ScriptedChatModel.from_file(path)
    return model, BackendInfo("scripted", str(path), None, f"scripted replies from {path.name}")


def _auto(config: AgentConfig) -> tuple[BaseChatModel, BackendInfo]:
    """Ollama if it answers with the default model, else the embedded default GGUF."""
    from agent.backends.llamacpp import cached_gguf, download_gguf  # lazy: import cycle (it imports agent.llm)

    reasons: list[str] = []
    try:
        return _ollama(config.ollama_model, config, require=False)
    except LLMUnavailable as exc:
        reasons.append(str(exc))
    path = cached_gguf(config.gguf_repo, config.gguf_file, config.models_dir)
    try:
        if path is None:
            path = download_gguf(config.gguf_repo, config.gguf_file, config.models_dir)
        return _llamacpp(path, config)
    except LLMUnavailable as exc:
        reasons.append(str(exc))
    raise LLMUnavailable(unavailable_message(config, reasons))
