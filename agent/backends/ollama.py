"""Ollama: a local server (`ollama serve`) with pulled models, spoken to over its HTTP API."""

from __future__ import annotations

import logging

import httpx
from langchain_core.language_models import BaseChatModel

log = logging.getLogger(__name__)


def list_models(host: str, timeout: float = 0.5) -> list[str] | None:
    """Names of the models pulled into the Ollama at `host` (GET /api/tags), or None when no
    Ollama answers there within `timeout` seconds."""
    try:
        response = httpx.get(f"{host}/api/tags", timeout=timeout)
        response.raise_for_status()
        return [str(m.get("name") or m.get("model")) for m in response.json().get("models", [])]
    except (httpx.HTTPError, ValueError, AttributeError) as exc:
        log.debug("no Ollama at %s: %s", host, exc)
        return None


def has_model(available: list[str], model: str) -> bool:
    """Whether `model` is among `available` (`qwen2.5` matches `qwen2.5:latest`)."""
    wanted = model if ":" in model else f"{model}:latest"
    return any(name == model or name == wanted for name in available)


def chat_model(model: str, host: str, *, temperature: float, max_tokens: int, n_ctx: int,
               timeout: float) -> BaseChatModel:
    """A ChatOllama for `model` at `host`."""
    from langchain_ollama import ChatOllama

    return ChatOllama(model=model, base_url=host, temperature=temperature, num_predict=max_tokens,
                      num_ctx=n_ctx, client_kwargs={"timeout": timeout})
