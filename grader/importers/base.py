"""What every importer returns: parsed cards with their source lines, skips and warnings."""

from __future__ import annotations

import re

from pydantic import Field

from grader.models import Strict

_COUNT_LINE = re.compile(r"^\(\s*(\d+)\s+cards?\s*\)$", re.IGNORECASE)
_INLINE_MARKUP = re.compile(r"\*\*|__|`")
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
_LIST_MARK = re.compile(r"^\s*(?:[-*•‣◦▪])\s+")


class ParsedCard(Strict):
    """One card read from an export file, before it gets an id."""

    question: str
    """Question text (Markdown)."""
    answer: str
    """Reference answer (Markdown; lists as one `- item` per line)."""
    footnote: str | None = None
    """Explanation shown after grading, when the export has one."""
    tags: list[str] = Field(default_factory=list)
    """Tags from the export (CSV/TSV only)."""
    line: int
    """1-based line in the source file where the card starts."""
    source_id: str | None = None
    """The card id the export carries (CSV written by `grader export`), kept when it is free."""


class Skipped(Strict):
    """A card in the export that was not imported, and why."""

    line: int
    """1-based line in the source file."""
    reason: str
    """Why it was skipped."""


class ParseResult(Strict):
    """Everything an importer read from one file."""

    format: str
    """The importer format used."""
    title: str | None = None
    """The export's title line, when it has one (used to name a new deck)."""
    announced: int | None = None
    """The card count the export's header announces, when it has one."""
    cards: list[ParsedCard] = Field(default_factory=list)
    """Cards in file order."""
    skipped: list[Skipped] = Field(default_factory=list)
    """Cards present in the export but not importable."""
    warnings: list[str] = Field(default_factory=list)
    """Things the user should know (e.g. the header announces more cards than the file holds)."""


def announced_count(line: str) -> int | None:
    """The N of a `(N cards)` header line, else None."""
    match = _COUNT_LINE.match(line.strip())
    return int(match.group(1)) if match else None


def count_warning(result: ParseResult) -> None:
    """Warn when the header's card count disagrees with what the file holds."""
    if result.announced is None:
        return
    found = len(result.cards) + len(result.skipped)
    if found != result.announced:
        result.warnings.append(
            f"the header announces {result.announced} cards but the file holds {found}"
        )


def normalise_question(text: str) -> str:
    """The key re-imports are matched on: case, Markdown emphasis, spacing and end punctuation."""
    plain = _INLINE_MARKUP.sub("", text).translate(_QUOTES)
    return " ".join(plain.casefold().split()).rstrip(" ?.!:")


def bullet_to_markdown(line: str) -> str:
    """`  • item` or `* item` becomes `- item`; other lines are returned stripped of end space."""
    match = _LIST_MARK.match(line)
    if match:
        return "- " + line[match.end() :].strip()
    return line.rstrip()


def inline_list(text: str) -> str:
    """` * a * b` written on one line becomes one `- item` line per item."""
    stripped = text.strip()
    if not stripped.startswith("* "):
        return stripped
    items = [item.strip() for item in re.split(r"(?:^|\s)\*\s+", stripped) if item.strip()]
    return "\n".join(f"- {item}" for item in items)
