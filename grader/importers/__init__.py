"""Importers: read flashcard exports (term/definition text, numbered text, CSV, TSV) into cards.

`parse_file` detects the format (or takes the one given) and returns a ParseResult;
`grader.importers.into_deck.import_into_deck` merges it into a deck file.
"""

from __future__ import annotations

import re
from pathlib import Path

from grader.deckfile import read_text_file
from grader.errors import InputError
from grader.importers.base import ParseResult, announced_count

FORMATS = ("termdef", "numbered", "csv", "tsv")
_NUMBER = re.compile(r"^\d+$")
_HEADER_NAMES = re.compile(
    r"^\s*\"?(front|question|term|q|prompt|id|side 1)\"?\s*[,\t;]|^#columns:", re.IGNORECASE
)


def detect_format(text: str, path: Path) -> str:
    """Guess the export format from the file name and its first lines."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".tsv":
        return "tsv"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        raise InputError("the file is empty", path=path)
    first = next((line for line in lines if not line.startswith("#")), "")
    directives = [line.lower() for line in lines[:5] if line.startswith("#")]
    if _HEADER_NAMES.match(first) or any(
        d.startswith(("#separator:", "#columns:")) for d in directives
    ):
        return "tsv" if "\t" in first or "#separator:tab" in directives else "csv"
    head = lines[2:] if len(lines) > 1 and announced_count(lines[1]) is not None else lines
    if head and _NUMBER.match(head[0]):
        return "numbered"
    if "## Footnote" in text or "How well did you know this?" in text:
        return "numbered"
    if len(lines) > 1 and announced_count(lines[1]) is not None:
        return "termdef"
    raise InputError(
        f"cannot tell the format; pass --format ({'|'.join(FORMATS)})", path=path, line=1
    )


def parse_text(text: str, path: Path, format: str | None = None) -> ParseResult:
    """Parse export text in `format` (detected when None)."""
    from grader.importers import delimited, numbered, termdef

    chosen = (format or detect_format(text, path)).lower()
    if chosen not in FORMATS:
        raise InputError(f"unknown format {chosen!r} (choose from {', '.join(FORMATS)})")
    if chosen == "termdef":
        return termdef.parse(text, path)
    if chosen == "numbered":
        return numbered.parse(text, path)
    return delimited.parse(text, path, "\t" if chosen == "tsv" else ",")


def parse_file(path: Path, format: str | None = None) -> ParseResult:
    """Read and parse an export file; every failure is an InputError naming the file (and line)."""
    if format is not None and format.lower() not in FORMATS:
        raise InputError(f"unknown format {format!r} (choose from {', '.join(FORMATS)})")
    return parse_text(read_text_file(Path(path)), Path(path), format)
