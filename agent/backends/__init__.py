"""One module per LLM backend: `ollama`, `llamacpp` (embedded llama.cpp server), `openai`
(any OpenAI-compatible server). `agent.llm` picks one; these modules only build chat models."""
