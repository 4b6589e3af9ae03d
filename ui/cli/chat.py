"""`metallmix chat`, `metallmix ask` and `metallmix judge`: the advisor and the judge in a terminal."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from knowledge.errors import MetaLLMiXError

if TYPE_CHECKING:
    from agent.session import Session

LLM = typer.Option(
    None, "--llm",
    help="ollama:MODEL | llamacpp:/path/model.gguf | openai:BASE_URL#MODEL | scripted:FILE "
         "(default: $METALLMIX_LLM, else Ollama if it answers, else the embedded llama.cpp model).",
)
THREAD = typer.Option("default", "--thread", "-t", help="Conversation id; the same id resumes it.")
STORE = typer.Option(None, "--store", help="Run store: a file path or a database URL (postgresql://...); default $METALLMIX_STORE or <home>/runs.sqlite.")
TIMING = typer.Option(False, "--timing", help="After each turn, print where its time went (seconds per "
                                               "step, LLM calls, prompt/generated tokens).")


def chat(llm: Optional[str] = LLM, thread: str = THREAD, store: Optional[str] = STORE,
         timing: bool = TIMING) -> None:
    """Talk with the advisor: describe your dataset, get a justified recommendation (Ctrl-D to quit)."""
    from rich.console import Console
    from rich.markdown import Markdown

    from agent.session import Session  # lazy: pulls in langgraph (CLI start-up)
    from knowledge.recommend import Recommendation  # lazy: CLI start-up (--help imports every command module)

    console = Console()
    with console.status("starting the language model ..."):
        session = Session(llm, store)
    console.print(f"[dim]LLM: {session.backend.description} · thread {thread!r} · Ctrl-D to quit[/dim]")
    console.print("Tell me about your image dataset: how many images, classes, image size, modality, "
                  "and your hardware/time budget.")
    try:
        while True:
            try:
                text = console.input("[bold]you>[/bold] ").strip()
            except EOFError:
                break
            if not text:
                continue
            if text in ("/quit", "/exit"):
                break
            with console.status("thinking ..."):
                result = session.turn(text, thread)
            console.print(Markdown(result["reply"] or "(no answer)"))
            if timing:
                from agent.timing import summary  # lazy: pulls in langchain (CLI start-up)

                console.print(f"[dim]{summary(_timing(session, thread, result))}[/dim]")
            if result["new_recommendation"]:  # the evidence itself, beside the model's words
                card = Recommendation.model_validate(result["recommendation"]).to_markdown()
                console.rule("recommendation")
                console.print(Markdown(card))
    except KeyboardInterrupt:
        console.print()
    finally:
        session.close()


def ask(
    message: str = typer.Argument(..., help="One user message."),
    llm: Optional[str] = LLM,
    thread: str = THREAD,
    store: Optional[str] = STORE,
    json_out: bool = typer.Option(False, "--json", help="Print JSON: reply, recommendation, tool calls, timing."),
    transcript_out: Optional[Path] = typer.Option(
        None, "--transcript", help="Also write the whole conversation so far (for `metallmix judge`)."
    ),
    timing: bool = TIMING,
) -> None:
    """Play one turn of the conversation non-interactively (for scripts)."""
    from agent.graph import transcript  # lazy: pulls in langgraph (CLI start-up)
    from agent.session import Session  # lazy: pulls in langgraph (CLI start-up)

    session = Session(llm, store)
    try:
        result = session.turn(message, thread)
        result["timing"] = _timing(session, thread, result)
        if transcript_out is not None:
            data = transcript(session._values(thread))
            transcript_out.write_text(json.dumps(data, indent=2, default=str))
    finally:
        session.close()
    if json_out:
        typer.echo(json.dumps(result, indent=2, default=str))
    else:
        typer.echo(result["reply"])
    if timing and not json_out:
        from agent.timing import summary  # lazy: pulls in langchain (CLI start-up)

        typer.echo(summary(result["timing"]), err=True)


def _timing(session: Session, thread: str, result: dict) -> Optional[dict]:
    """The turn's timing: from the turn result when Session puts it there, else the graph state."""
    return result.get("timing") or session.values(thread).get("timing")


def judge(
    transcript: Path = typer.Argument(..., help="A transcript JSON (from `metallmix ask --json` threads or the UI)."),
    llm: Optional[str] = LLM,
    store: Optional[str] = STORE,
    json_out: bool = typer.Option(False, "--json", help="Print the verdict as JSON."),
) -> None:
    """Grade a finished conversation's recommendation: format, accuracy, completeness."""
    from agent.judge import judge_transcript  # lazy: pulls in langgraph (CLI start-up)
    from agent.llm import get_chat_model  # lazy: pulls in langchain (CLI start-up)
    try:
        data = json.loads(Path(transcript).read_text())
    except OSError as exc:
        raise MetaLLMiXError(f"{transcript}: cannot read: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise MetaLLMiXError(f"{transcript}: not JSON: {exc.msg} at line {exc.lineno}") from None
    model, _ = get_chat_model(llm)
    verdict = judge_transcript(data, model, store=store)
    if json_out:
        typer.echo(verdict.model_dump_json(indent=2))
        return
    for name, score in verdict.scores().items():
        typer.echo(f"{name}: {score}/5")
    typer.echo("passed" if verdict.passed else "not passed")
    sys.stdout.flush()
