"""`grader deck ...`: list, show and check decks."""

import typer

app = typer.Typer(help="List, show and check decks.", no_args_is_help=True)
