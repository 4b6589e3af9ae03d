"""`metallmix analyze` (being implemented)."""

import typer


def analyze() -> None:
    """Not implemented yet."""
    raise typer.Exit(1)
