"""`metallmix ui`: the web app (chat with the advisor beside its evidence) in the browser."""

from __future__ import annotations

from typing import Optional

import typer

from ui.cli.chat import LLM, STORE


def ui(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(7860, "--port", help="Port to listen on."),
    llm: Optional[str] = LLM,
    store: Optional[str] = STORE,
) -> None:
    """Open the web app: chat, traits, recommendation card, SHAP and Pareto plots, dataset upload."""
    from ui.app import build_app  # lazy: pulls in the web UI and langgraph (CLI start-up)

    demo = build_app(llm, store)
    typer.echo(f"MetaLLMiX UI on http://{host}:{port}")
    try:
        demo.launch(server_name=host, server_port=port)
    finally:
        demo.advisor.close()
