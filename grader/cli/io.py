"""`grader import` and `grader export`."""

import typer


def register(app: typer.Typer) -> None:
    """Mount the import/export commands on the root app."""
