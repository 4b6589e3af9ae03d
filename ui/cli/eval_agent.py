"""`metallmix eval agent`: the scripted agent evals (`eval.agent`).

    metallmix eval agent                                   # every scenario, scripted backend
    metallmix eval agent --llm scripted --scenarios 'launch-*,why-not-vit' --json
    metallmix eval agent --llm llamacpp:/models/qwen-1.5b.gguf --llm scripted --markdown eval.md
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from knowledge.errors import StoreError

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "eval" / "results" / "agent_eval.json"


def agent(
    llm: Optional[list[str]] = typer.Option(None, "--llm", help="LLM spec to evaluate (repeat for "
                                            "a side-by-side report): scripted (the deterministic "
                                            "stand-in, default), llamacpp:/path.gguf, ollama:MODEL, "
                                            "openai:URL#MODEL, scripted:FILE."),
    scenarios: Optional[list[str]] = typer.Option(None, "--scenarios", help="Scenario names or "
                                                  "globs, comma-separated or repeated (default: "
                                                  "all)."),
    scenario_dir: Optional[Path] = typer.Option(None, "--scenario-dir", help="Folder of scenario "
                                                "files (default: the shipped eval/scenarios)."),
    judge_llm: Optional[str] = typer.Option(None, "--judge-llm", help="LLM spec of the judge "
                                            "(default: each backend judges its own conversations; "
                                            "'none': deterministic checks only)."),
    store: Optional[Path] = typer.Option(None, "--store", help="Run store to copy for the agent "
                                         "(default: the default store); never modified."),
    timeout: float = typer.Option(900.0, "--timeout", min=1.0, help="Seconds one scenario may take."),
    max_turns: int = typer.Option(12, "--max-turns", min=1, help="Most user turns per scenario."),
    launch_minutes: float = typer.Option(1.0, "--launch-minutes", min=0.05, help="Training time "
                                         "cap of each run a scenario launches, in minutes."),
    out: Path = typer.Option(DEFAULT_OUT, "--out", help="Where to write the JSON report (rewritten "
                             "after every scenario)."),
    markdown: Optional[Path] = typer.Option(None, "--markdown", help="Also write the tables as a "
                                            "Markdown fragment."),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON report instead of tables."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Progress bar over scenarios."),
    check: bool = typer.Option(False, "--check", help="Exit 1 when a scenario fails (for CI)."),
) -> None:
    """Play scripted conversations with the advisor and score them (traits, tools, grounding,
    safety, judge, speed)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from eval.agent.loading import load_scenarios  # lazy: CLI start-up (--help imports every command module)
    from eval.agent.report import (  # lazy: CLI start-up (--help imports every command module)
        failures,
        rich_tables,
        to_markdown,
    )
    from eval.agent.runner import SCRIPTED, run_suite, write_json  # lazy: pulls in langgraph (CLI start-up)

    specs = [s for s in (llm or [SCRIPTED]) if s.strip()]
    chosen = load_scenarios(scenarios, scenario_dir)
    console = Console(stderr=True)
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=console, disable=not progress, transient=as_json)
    task = bar.add_task("agent evals", total=len(chosen) * len(specs))

    def callback(event: str, backend: str, scenario: str, result: dict[str, Any] | None) -> None:
        if event == "start":
            bar.update(task, description=f"{backend[-30:]} · {scenario}")
        else:
            bar.advance(task)
            if result is not None and result["outcome"] == "fail":
                bar.console.print(f"[red]FAIL[/red] {backend} · {scenario}: "
                                  + "; ".join(result["failed"])[:300])

    with bar:
        report = run_suite(chosen, specs, judge=judge_llm, store=store, out=out, timeout_s=timeout,
                           max_turns=max_turns, launch_minutes=launch_minutes, callback=callback)
    command = _command(specs, scenarios, judge_llm, timeout, max_turns, launch_minutes,
                       scenario_dir)
    report["command"] = command
    write_json(out, report)
    if markdown is not None:
        try:
            markdown.parent.mkdir(parents=True, exist_ok=True)
            markdown.write_text(to_markdown(report, command), encoding="utf-8")
        except OSError as exc:
            raise StoreError(f"cannot write {markdown}: {exc}") from None
    if as_json:
        typer.echo(json.dumps(report, indent=2, default=str))
    else:
        screen = Console()
        for table in rich_tables(report):
            screen.print(table)
        for line in failures(report):
            screen.print(f"- {line}", markup=False)
        console.print(f"report written to {out}" + (f" and {markdown}" if markdown else ""))
    failed = any(r["outcome"] == "fail" for b in report["backends"] for r in b["results"])
    if check and (failed or any(b.get("error") for b in report["backends"])):
        raise typer.Exit(1)


def _command(specs: list[str], scenarios: Optional[list[str]], judge: Optional[str],
             timeout: float, max_turns: int, launch_minutes: float,
             scenario_dir: Optional[Path] = None) -> str:
    """The command line that reproduces the run (for the report)."""
    parts = ["metallmix", "eval", "agent"]
    if scenario_dir is not None:
        parts += ["--scenario-dir", str(scenario_dir)]
    for spec in specs:
        parts += ["--llm", spec]
    for pattern in scenarios or []:
        parts += ["--scenarios", pattern]
    if judge:
        parts += ["--judge-llm", judge]
    for flag, value, default in (("--timeout", timeout, 900.0), ("--max-turns", max_turns, 12),
                                 ("--launch-minutes", launch_minutes, 1.0)):
        if value != default:
            parts += [flag, f"{value:g}"]
    return " ".join(shlex.quote(p) for p in parts)
