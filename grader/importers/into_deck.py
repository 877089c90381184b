"""Merge parsed cards into a deck file: new ids, provenance, idempotent on normalised questions."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError

from grader.deckfile import load_deck, save_deck
from grader.errors import InputError, first_error
from grader.importers import parse_file
from grader.importers.base import ParseResult, Skipped, normalise_question
from grader.models import Card, Deck, Provenance, Strict, new_card_id, utc_now_iso


class Duplicate(Strict):
    """A card of the export whose question the deck already holds."""

    line: int
    """Line in the source file."""
    card_id: str
    """The deck card it matched."""


class ImportReport(Strict):
    """What `grader import` did."""

    source: str
    """The file imported."""
    deck_path: str
    """The deck file written (or that would have been)."""
    deck_name: str
    """The deck's name."""
    deck_created: bool
    """True when the deck file did not exist before."""
    format: str
    """The importer format used."""
    title: str | None
    """The export's title line."""
    announced: int | None
    """The card count the export's header announces."""
    parsed: int
    """Cards read from the export."""
    added: int
    """Cards added to the deck."""
    footnotes: int
    """Cards read from the export that carry a footnote."""
    added_ids: list[str] = Field(default_factory=list)
    """Ids of the added cards, in order."""
    duplicates: list[Duplicate] = Field(default_factory=list)
    """Cards already in the deck (matched on normalised question text), not added again."""
    skipped: list[Skipped] = Field(default_factory=list)
    """Cards in the export that could not be imported, with the reason."""
    warnings: list[str] = Field(default_factory=list)
    """Things worth knowing about the export."""


def _source_label(path: Path) -> str:
    return path.as_posix()


def merge(
    deck: Deck,
    parsed: ParseResult,
    source: Path,
    created_at: str,
    tags: list[str],
) -> tuple[Deck, list[str], list[Duplicate]]:
    """A deck with the parsed cards appended; cards whose question the deck holds are skipped."""
    by_question = {normalise_question(card.question): card.id for card in deck.cards}
    used_ids = {card.id for card in deck.cards}
    cards = list(deck.cards)
    added: list[str] = []
    duplicates: list[Duplicate] = []
    for item in parsed.cards:
        key = normalise_question(item.question)
        if key in by_question:
            duplicates.append(Duplicate(line=item.line, card_id=by_question[key]))
            continue
        card_id = item.source_id if item.source_id and item.source_id not in used_ids else None
        while card_id is None or card_id in used_ids:
            card_id = new_card_id()
        try:
            card = Card(
                id=card_id,
                question=item.question,
                answer=item.answer,
                footnote=item.footnote,
                tags=sorted(set(item.tags) | set(tags)),
                provenance=Provenance(
                    kind="imported",
                    source=f"{_source_label(source)}:{item.line}",
                    format=parsed.format,
                    created_at=created_at,
                ),
            )
        except ValidationError as exc:  # an id with a space, a tag that is no token, ...
            field, message = first_error(exc, "card")
            raise InputError(f"{field}: {message}", path=source, line=item.line) from None
        cards.append(card)
        used_ids.add(card_id)
        by_question[key] = card_id
        added.append(card_id)
    return deck.model_copy(update={"cards": cards}), added, duplicates


def import_into_deck(
    source: Path,
    deck_path: Path,
    *,
    format: str | None = None,
    name: str | None = None,
    tags: list[str] | None = None,
    created_at: str | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Import `source` into the deck at `deck_path`, creating the deck when it does not exist.

    The deck is written atomically, and only when cards were added; any error leaves it untouched.
    """
    source, deck_path = Path(source), Path(deck_path)
    if deck_path.is_dir():
        raise InputError("is a directory, not a deck file", path=deck_path)
    parsed = parse_file(source, format)
    if dry_run:
        return _import(parsed, source, deck_path, name, tags, created_at, write=False)
    from grader.expand.proposals import deck_lock

    # The same lock `grader review` holds, so an import never loses a concurrent approval.
    with deck_lock(deck_path):
        return _import(parsed, source, deck_path, name, tags, created_at, write=True)


def _import(
    parsed: ParseResult,
    source: Path,
    deck_path: Path,
    name: str | None,
    tags: list[str] | None,
    created_at: str | None,
    *,
    write: bool,
) -> ImportReport:
    if deck_path.exists() or deck_path.is_symlink():
        deck = load_deck(deck_path).deck
        created = False
    else:
        deck = None
        created = True
    if deck is None:
        deck = Deck(name=name or parsed.title or deck_path.stem.replace("-", " ").strip() or "deck")
    elif name:
        deck = deck.model_copy(update={"name": name})
    merged, added, duplicates = merge(
        deck, parsed, source, created_at or utc_now_iso(), sorted(set(tags or []))
    )
    if (added or created) and write:
        save_deck(deck_path, merged)
    footnotes = sum(1 for card in parsed.cards if card.footnote)
    return ImportReport(
        source=_source_label(source),
        deck_path=deck_path.as_posix(),
        deck_name=merged.name,
        deck_created=created,
        format=parsed.format,
        title=parsed.title,
        announced=parsed.announced,
        parsed=len(parsed.cards),
        added=len(added),
        footnotes=footnotes,
        added_ids=added,
        duplicates=duplicates,
        skipped=parsed.skipped,
        warnings=parsed.warnings,
    )
