"""`grader deck ...`: list, show and check decks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from grader.exitcodes import ExitCode

app = typer.Typer(help="List, show and check decks.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON envelope.")]


@app.command("list")
def list_command(
    directory: Annotated[
        Path, typer.Argument(help="Directory holding deck files.", show_default=True)
    ] = Path("decks"),
    json_output: JsonOption = False,
) -> None:
    """List the decks in DIRECTORY with their card counts."""
    from grader.deckfile import list_decks
    from grader.render import print_json

    entries = list_decks(directory)
    if json_output:
        print_json("deck list", entries)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table("deck", "name", "cards", box=None, pad_edge=False)
    for entry in entries:
        cards = str(entry.cards) if entry.cards is not None else f"invalid: {entry.problem}"
        table.add_row(Text(entry.path), Text(entry.name or ""), Text(cards))
    console = Console(highlight=False, soft_wrap=True)
    if entries:
        console.print(table)
    else:
        console.print(Text(f"no decks in {directory}"))


@app.command("show")
def show_command(
    deck: Annotated[Path, typer.Argument(help="Deck file.", show_default=False)],
    card_id: Annotated[
        str | None, typer.Argument(help="Show only this card.", show_default=False)
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Show a deck's cards, or one card in full."""
    from grader.deckfile import load_deck
    from grader.errors import NotFoundError
    from grader.render import print_json

    loaded = load_deck(deck)
    if card_id is not None:
        card = loaded.deck.card(card_id)
        if card is None:
            raise NotFoundError(f"{deck}: no card with id {card_id!r}")
        if json_output:
            print_json("deck show", {"path": deck.as_posix(), "card": card})
            return
        _print_card(card)
        return
    if json_output:
        print_json("deck show", {"path": deck.as_posix(), "deck": loaded.deck})
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False, soft_wrap=True)
    title = Text(loaded.deck.name, style="bold")
    title.append(f"  {deck}  ({len(loaded.deck.cards)} cards)", style="")
    console.print(title)
    if loaded.deck.description:
        console.print(Text(loaded.deck.description))
    table = Table("id", "question", "tags", box=None, pad_edge=False)
    for item in loaded.deck.cards:
        table.add_row(Text(item.id), Text(item.question), Text(" ".join(item.tags)))
    console.print(table)


def _print_card(card: object) -> None:
    from rich.console import Console
    from rich.text import Text

    from grader.cli.grade_view import deck_text
    from grader.models import Card

    assert isinstance(card, Card)
    console = Console(highlight=False, soft_wrap=True)
    console.print(Text(f"{card.id}", style="bold"))
    console.print(Text("Question", style="bold cyan"))
    console.print(deck_text(card.question))
    console.print(Text("Answer", style="bold cyan"))
    console.print(deck_text(card.answer))
    if card.footnote:
        console.print(Text("Footnote", style="bold cyan"))
        console.print(deck_text(card.footnote))
    if card.tags:
        console.print(Text("Tags: " + ", ".join(card.tags)))
    if card.provenance:
        details = card.provenance.model_dump(exclude_none=True)
        console.print(Text("Provenance: " + ", ".join(f"{k}={v}" for k, v in details.items())))


@app.command("check")
def check_command(
    decks: Annotated[
        list[Path], typer.Argument(help="Deck files to validate.", show_default=False)
    ],
    json_output: JsonOption = False,
) -> None:
    """Validate decks; exit 1 listing every problem as `file:line: message`."""
    from grader.deckfile import check_decks
    from grader.render import notice, print_json

    results = check_decks(decks)
    failed = any(not result.ok for result in results)
    if json_output:
        print_json("deck check", results)
    else:
        for result in results:
            if result.ok:
                typer.echo(f"{result.path}: ok ({result.cards} cards)")
            for problem in result.problems:
                typer.echo(f"{problem.path}:{problem.line}: {problem.message}")
            for note in result.notes:
                notice(f"note: {note.path}:{note.line}: {note.message}")
        if failed:
            count = sum(len(result.problems) for result in results)
            notice(f"{count} problem{'s' if count != 1 else ''} found")
    if failed:
        raise typer.Exit(ExitCode.ERROR)
