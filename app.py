"""Hugging Face Spaces entry point: the MetaLLMiX web app (same as `metallmix ui`).

The LLM comes from $METALLMIX_LLM (else Ollama if it answers, else the embedded llama.cpp model);
without one the no-LLM recommendation panel still works.
"""

from ui.app import build_app

demo = build_app()

if __name__ == "__main__":
    demo.launch()
