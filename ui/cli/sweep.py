"""`metallmix sweep` (being implemented)."""

import typer


def sweep() -> None:
    """Not implemented yet."""
    raise typer.Exit(1)
