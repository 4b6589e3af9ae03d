"""Any OpenAI-compatible chat server (llama.cpp's llama-server, vLLM, LM Studio, OpenAI)."""

from __future__ import annotations

import os

from langchain_core.language_models import BaseChatModel


def chat_model(base_url: str, model: str, *, temperature: float, max_tokens: int,
               timeout: float, api_key: str | None = None, max_retries: int = 1,
               extra_body: dict | None = None) -> BaseChatModel:
    """A ChatOpenAI for `model` at `base_url`; the key is `api_key`, else `OPENAI_API_KEY`, else
    "none" (local servers ignore it). `max_retries`: 0 for the embedded server, where a request
    that timed out would only queue behind the one still running. `extra_body`: fields added to
    every request (llama.cpp: `{"cache_prompt": True}`)."""
    from langchain_openai import ChatOpenAI

    key = api_key or os.environ.get("OPENAI_API_KEY") or "none"
    return ChatOpenAI(base_url=base_url, api_key=key, model=model, temperature=temperature,
                      max_tokens=max_tokens, timeout=timeout, max_retries=max_retries,
                      extra_body=extra_body)
