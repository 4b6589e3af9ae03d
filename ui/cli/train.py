"""`metallmix train` (being implemented)."""

import typer


def train() -> None:
    """Not implemented yet."""
    raise typer.Exit(1)
