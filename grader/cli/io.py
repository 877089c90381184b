"""`grader import` and `grader export`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from grader.importers.into_deck import ImportReport

FORMAT_HELP = "Export format: termdef, numbered, csv or tsv (detected when omitted)."


def import_command(
    file: Annotated[Path, typer.Argument(help="The export file to import.", show_default=False)],
    deck: Annotated[
        Path, typer.Option("--deck", "-d", help="Deck file to import into (created if missing).")
    ],
    format: Annotated[str | None, typer.Option("--format", "-f", help=FORMAT_HELP)] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Deck name (default: the export's title).")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Tag every imported card (repeatable).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what would be imported; write nothing.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON envelope.")] = False,
) -> None:
    """Import flashcards from FILE into a deck; re-importing the same file adds nothing."""
    from grader.importers.into_deck import import_into_deck
    from grader.render import notice, print_json

    report = import_into_deck(file, deck, format=format, name=name, tags=tag, dry_run=dry_run)
    for warning in report.warnings:
        notice(f"warning: {report.source}: {warning}")
    if json_output:
        print_json("import", report)
        return
    _print_import_report(report, dry_run=dry_run)


def _print_import_report(report: ImportReport, *, dry_run: bool) -> None:
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False, soft_wrap=True)  # paths, names, reasons: Text, not markup
    verb = "would add" if dry_run else "added"
    where = "new deck" if report.deck_created else "deck"
    skipped = f", {len(report.skipped)} skipped" if report.skipped else ""
    console.print(
        Text(
            f"{report.source} ({report.format}): {report.parsed} cards, "
            f"{report.footnotes} with footnotes{skipped}"
        )
    )
    console.print(
        Text(f"{verb} {report.added} cards to {where} {report.deck_path} ({report.deck_name})")
    )
    if report.duplicates:
        console.print(
            f"{len(report.duplicates)} already in the deck (matched on normalised question text), "
            "not added again"
        )
    for skip in report.skipped:
        console.print(Text(f"skipped {report.source}:{skip.line}: {skip.reason}"))


def export_command(
    deck: Annotated[Path, typer.Argument(help="The deck file to export.", show_default=False)],
    format: Annotated[str, typer.Option("--format", "-f", help="csv or apkg.")] = "csv",
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Output file (default: the deck's name with the suffix)."),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON envelope.")] = False,
) -> None:
    """Export a deck as CSV or as an Anki package (.apkg) whose notes keep stable GUIDs."""
    from grader.export import export_deck
    from grader.render import print_json

    result = export_deck(deck, format, out)
    if json_output:
        print_json("export", result)
        return
    typer.echo(f"wrote {result.cards} cards to {result.path} ({result.format})")


def register(app: typer.Typer) -> None:
    """Mount the import/export commands on the root app."""
    app.command("import")(import_command)
    app.command("export")(export_command)
