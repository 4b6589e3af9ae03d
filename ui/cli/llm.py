"""`metallmix llm serve | status | stop`: a llama.cpp server kept warm for other processes.

    metallmix llm serve --model /models/qwen.gguf      # foreground; Ctrl-C stops it
    nohup metallmix llm serve --model /models/qwen.gguf > llm.log 2>&1 &   # in the background
    metallmix ask "..." --llm llamacpp:/models/qwen.gguf --thread t1       # attaches to it

`metallmix ask`, `chat` and `ui` with a `llamacpp:` spec (or the auto-selected default GGUF) for
the same file use the daemon instead of loading the model: each `ask` then starts answering at
once, and the prompt cache of the previous turn is still there. See `agent.backends.daemon`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from knowledge.errors import MetaLLMiXError

if TYPE_CHECKING:
    from agent.configuration import AgentConfig

app = typer.Typer(name="llm", help="A llama.cpp server kept warm across `metallmix ask` processes.",
                  no_args_is_help=True)

MODEL = typer.Option(None, "--model", "-m",
                     help="GGUF file (default: the llamacpp: file of $METALLMIX_LLM, else the "
                          "default model in the models dir).")


def _model_path(model: Optional[Path], config: AgentConfig) -> Path:
    """The GGUF file: `--model`, else METALLMIX_LLM's llamacpp file, else the cached default."""
    from agent.backends.llamacpp import cached_gguf, download_gguf  # lazy: langchain (CLI start-up)
    from agent.llm import parse_spec  # lazy: langchain (CLI start-up)

    if model is not None:
        return model.expanduser().resolve()
    if config.llm:
        spec = parse_spec(config.llm)
        if spec.kind != "llamacpp":
            raise MetaLLMiXError(f"METALLMIX_LLM={config.llm!r} is not a llamacpp: spec; pass --model")
        if spec.hf_repo and spec.hf_file:
            return download_gguf(spec.hf_repo, spec.hf_file, config.models_dir)
        return Path(spec.model).expanduser().resolve()
    found = cached_gguf(config.gguf_repo, config.gguf_file, config.models_dir)
    return found or download_gguf(config.gguf_repo, config.gguf_file, config.models_dir)


@app.command("serve")
def serve(model: Optional[Path] = MODEL,
          threads: Optional[int] = typer.Option(
              None, "--threads", min=1,
              help="llama.cpp threads (default: $METALLMIX_THREADS, else the cores free now)."),
          n_ctx: Optional[int] = typer.Option(None, "--n-ctx", min=512,
                                              help="Context window (default: $METALLMIX_N_CTX or 8192)."),
          port: int = typer.Option(0, "--port", min=0, max=65535, help="Port on 127.0.0.1 (0: a free one)."),
          ) -> None:
    """Serve a GGUF model on 127.0.0.1 until Ctrl-C / SIGTERM; `ask`, `chat` and `ui` attach to it."""
    from agent.backends.llamacpp import serve_daemon  # lazy: langchain (CLI start-up)
    from agent.configuration import AgentConfig  # lazy: pydantic settings (CLI start-up)

    config = AgentConfig.from_env(threads=threads, n_ctx=n_ctx)
    path = _model_path(model, config)
    code = serve_daemon(path, n_ctx=config.n_ctx, threads=config.threads, port=port,
                        announce=lambda text: typer.echo(text, err=True))
    raise typer.Exit(code)


@app.command("status")
def status() -> None:
    """List the running daemons (model, address, pid, threads)."""
    from agent.backends import daemon  # lazy: httpx (CLI start-up)

    servers = daemon.list_servers()
    if not servers:
        typer.echo(f"no llama.cpp daemon running (state files in {daemon.default_dir()})")
        return
    for state, ok in servers:
        typer.echo(f"{state.model_name}: {state.base_url} pid {state.pid}, {state.threads} threads, "
                   f"n_ctx {state.n_ctx}{'' if ok else ' (NOT ANSWERING)'} - {state.model}")


@app.command("stop")
def stop(model: Optional[Path] = typer.Option(None, "--model", "-m",
                                              help="Stop only the daemon of this GGUF file.")) -> None:
    """Stop the running daemons (all, or the one serving --model)."""
    from agent.backends import daemon  # lazy: httpx (CLI start-up)

    wanted = model.expanduser().resolve() if model is not None else None
    stopped = 0
    for state, _ in daemon.list_servers():
        if wanted is None or Path(state.model) == wanted:
            if daemon.stop_server(state):
                typer.echo(f"stopped {state.model_name} (pid {state.pid})")
                stopped += 1
    if not stopped:
        typer.echo("no llama.cpp daemon to stop")
