"""The `metallmix` command line. Each command (group) lives in its own module.

Start-up time matters (`metallmix recommend` answers in about a second), so the command modules
are imported lazily: `main` looks at the command name on the command line and registers only that
command; `--help`, no command or an unknown one register them all (so help and "no such command"
errors list every command). `ui.cli.app` is the full Typer app (built on first access), for
callers that want every command, e.g. `CliRunner().invoke(app, ...)`. Heavy imports (torch,
xgboost, langchain) happen inside the commands.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from typing import Any

import typer

from knowledge.errors import MetaLLMiXError

# name -> (module, function), in the order `--help` lists them
COMMANDS: dict[str, tuple[str, str]] = {
    "analyze": ("ui.cli.analyze", "analyze"),
    "train": ("ui.cli.train", "train"),
    "sweep": ("ui.cli.sweep", "sweep"),
    "portfolio": ("ui.cli.portfolio", "portfolio"),
    "fit": ("ui.cli.fit", "fit"),
    "recommend": ("ui.cli.recommend", "recommend"),
    "chat": ("ui.cli.chat", "chat"),
    "ask": ("ui.cli.chat", "ask"),
    "judge": ("ui.cli.chat", "judge"),
    "ui": ("ui.cli.ui", "ui"),
}


def _runs_app() -> typer.Typer:
    from ui.cli import published, runs  # lazy: only the command run is imported (CLI start-up)

    if "import-medmnist-plus" not in {c.name for c in runs.app.registered_commands}:
        runs.app.command("import-medmnist-plus")(published.import_medmnist_plus)
    return runs.app


def _eval_app() -> typer.Typer:
    from ui.cli import eval as eval_cli  # lazy: only the command run is imported (CLI start-up)

    return eval_cli.app


def _llm_app() -> typer.Typer:
    from ui.cli import llm  # lazy: only the command run is imported (CLI start-up)

    return llm.app


GROUPS: dict[str, Callable[[], typer.Typer]] = {"runs": _runs_app, "eval": _eval_app, "llm": _llm_app}
_GLOBAL_FLAGS = frozenset({"--verbose", "-v"})


def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def build_app(only: str | None = None) -> typer.Typer:
    """The Typer app with every command, or with only the command (or group) `only`."""
    app = typer.Typer(
        name="metallmix",
        help="MetaLLMiX: which pretrained model and hyperparameters to use for your image dataset, "
             "and why.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    app.callback()(_root)
    for name, (module, attr) in COMMANDS.items():
        if only is None or name == only:
            app.command(name)(getattr(importlib.import_module(module), attr))
    for name, factory in GROUPS.items():
        if only is None or name == only:
            app.add_typer(factory(), name=name)
    return app


def command_name(argv: list[str]) -> str | None:
    """The command named on a command line (after the global flags), if it is a known one."""
    for arg in argv:
        if arg in _GLOBAL_FLAGS:
            continue
        return arg if arg in COMMANDS or arg in GROUPS else None
    return None


_FULL_APP: typer.Typer | None = None


def __getattr__(name: str) -> Any:
    """`ui.cli.app`: the full app, built on first access."""
    global _FULL_APP
    if name == "app":
        if _FULL_APP is None:
            _FULL_APP = build_app()
        return _FULL_APP
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        app = build_app(command_name(args))
        rc = app(args=args, standalone_mode=False)
    except MetaLLMiXError as exc:
        typer.echo(f"error: {exc}", err=True)
        return 2
    except typer.Abort:
        typer.echo("aborted", err=True)
        return 130
    except SystemExit as exc:  # typer/click exits (e.g. --help)
        return int(exc.code or 0)
    except Exception as exc:  # noqa: BLE001 - click usage errors
        import click

        # recent typer vendors click: its usage errors are typer.TyperException, not click's
        if isinstance(exc, (click.ClickException, typer.TyperException)) and hasattr(exc, "show"):
            exc.show()
            return exc.exit_code
        raise
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
