"""The `metallmix` command line. Each command group lives in its own module; heavy imports
(torch, xgboost, langchain) happen inside commands so that `--help` and `recommend` start fast."""

from __future__ import annotations

import logging
import sys

import typer

from knowledge.errors import MetaLLMiXError
from ui.cli import analyze, chat, fit, published, recommend, runs, sweep, train
from ui.cli import eval as eval_cli
from ui.cli.ui import ui as ui_command

app = typer.Typer(
    name="metallmix",
    help="MetaLLMiX: which pretrained model and hyperparameters to use for your image dataset, and why.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _root(
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages."),
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


app.command("analyze")(analyze.analyze)
app.command("train")(train.train)
app.command("sweep")(sweep.sweep)
app.command("fit")(fit.fit)
app.command("recommend")(recommend.recommend)
app.command("chat")(chat.chat)
app.command("ask")(chat.ask)
app.command("judge")(chat.judge)
app.command("ui")(ui_command)
runs.app.command("import-medmnist-plus")(published.import_medmnist_plus)
app.add_typer(runs.app, name="runs")
app.add_typer(eval_cli.app, name="eval")


def main(argv: list[str] | None = None) -> int:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback."""
    try:
        rc = app(args=argv, standalone_mode=False)
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
