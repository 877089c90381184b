"""Export a deck as CSV (readable back by `grader import`) or as an Anki package (genanki).

Anki ids are derived, never random: each note's GUID from its card id (so re-importing an edited
deck into Anki updates notes instead of duplicating them), and the model and deck ids from the
deck's name (so a re-export lands in the same Anki deck and note type).
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from grader.atomic import write_bytes_atomic, write_text_atomic
from grader.deckfile import load_deck
from grader.errors import InputError
from grader.models import Deck, Strict

if TYPE_CHECKING:
    import genanki

ExportFormat = Literal["csv", "apkg"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv", "apkg")
CSV_COLUMNS = ("id", "front", "back", "footnote", "tags")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_CODE = re.compile(r"`([^`]+)`")
_ITEM = re.compile(r"^\s*[-*]\s+(.*)$")


class ExportResult(Strict):
    """What `grader export` wrote."""

    path: str
    """The file written."""
    format: ExportFormat
    """csv or apkg."""
    deck_name: str
    """The deck's name."""
    cards: int
    """Number of cards (Anki notes) written."""


def stable_anki_id(kind: str, deck_name: str) -> int:
    """A model or deck id in genanki's recommended range, derived from the deck name."""
    digest = hashlib.sha256(f"grader:{kind}:{deck_name}".encode()).digest()
    return (1 << 30) + int.from_bytes(digest[:8], "big") % (1 << 30)


def note_guid(card_id: str) -> str:
    """The Anki note GUID of a card: derived from its stable id only."""
    import genanki

    return str(genanki.guid_for("grader", card_id))


def markdown_to_html(text: str) -> str:
    """The small Markdown subset decks use (bold, code, `- item` lists, line breaks) as HTML."""
    parts: list[str] = []
    items: list[str] = []

    def inline(line: str) -> str:
        escaped = html.escape(line, quote=False)
        return _CODE.sub(r"<code>\1</code>", _BOLD.sub(r"<b>\1</b>", escaped))

    def flush() -> None:
        if items:
            parts.append("<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>")
            items.clear()

    lines: list[str] = []
    for line in text.splitlines():
        match = _ITEM.match(line)
        if match:
            if lines:
                parts.append("<br>".join(lines))
                lines = []
            items.append(inline(match.group(1)))
        else:
            flush()
            lines.append(inline(line))
    flush()
    if lines:
        parts.append("<br>".join(lines))
    return "".join(parts)


def deck_csv(deck: Deck) -> str:
    """CSV text with a header `grader import` understands (the id column keeps card ids)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for card in deck.cards:
        writer.writerow(
            [card.id, card.question, card.answer, card.footnote or "", " ".join(card.tags)]
        )
    return buffer.getvalue()


def _anki_model(deck_name: str) -> genanki.Model:
    import genanki

    back = (
        "{{FrontSide}}<hr id=answer>{{Answer}}"
        "{{#Footnote}}<div class=footnote>{{Footnote}}</div>{{/Footnote}}"
    )
    return genanki.Model(
        stable_anki_id("model", deck_name),
        f"grader: {deck_name}",
        fields=[{"name": "Question"}, {"name": "Answer"}, {"name": "Footnote"}, {"name": "CardId"}],
        templates=[{"name": "Card 1", "qfmt": "{{Question}}", "afmt": back}],
        css=".card { font-family: sans-serif; } .footnote { margin-top: 1em; color: #666; }",
    )


def deck_package_bytes(deck: Deck, timestamp: float | None = None) -> bytes:
    """The .apkg bytes of a deck."""
    import genanki

    model = _anki_model(deck.name)
    anki_deck = genanki.Deck(stable_anki_id("deck", deck.name), deck.name)
    for card in deck.cards:
        fields: list[Any] = [
            markdown_to_html(card.question),
            markdown_to_html(card.answer),
            markdown_to_html(card.footnote or ""),
            card.id,
        ]
        tags = [re.sub(r"\s+", "_", tag) for tag in card.tags]
        anki_deck.add_note(
            genanki.Note(model=model, fields=fields, tags=tags, guid=note_guid(card.id))
        )
    buffer = io.BytesIO()
    genanki.Package(anki_deck).write_to_file(buffer, timestamp=timestamp)
    return buffer.getvalue()


def export_deck(deck_path: Path, format: str, out: Path | None = None) -> ExportResult:
    """Write the deck at `deck_path` as `format` to `out` (default: `<deck stem>.<format>`)."""
    if format not in EXPORT_FORMATS:
        raise InputError(f"unknown export format {format!r} (choose from csv, apkg)")
    deck = load_deck(Path(deck_path)).deck
    target = Path(out) if out is not None else Path(f"{Path(deck_path).stem}.{format}")
    if target.is_dir():
        raise InputError("is a directory, not a file", path=target)
    if format == "csv":
        write_text_atomic(target, deck_csv(deck))
    else:
        write_bytes_atomic(target, deck_package_bytes(deck))
    return ExportResult(
        path=target.as_posix(),
        format="csv" if format == "csv" else "apkg",
        deck_name=deck.name,
        cards=len(deck.cards),
    )
