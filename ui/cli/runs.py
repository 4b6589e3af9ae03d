"""`metallmix runs ...` (being implemented)."""

import typer

app = typer.Typer(help="The run store: list, export and import run records.", no_args_is_help=True)
