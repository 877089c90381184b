"""CSV and TSV exports with a header row (Anki's and Quizlet's common shape).

Column names are matched case-insensitively: front/question/term, back/answer/definition,
optional footnote/notes/extra/explanation and tags. Anki's `#separator:` / `#columns:` header lines
are understood; other `#` lines before the header are skipped. Tags split on spaces and commas.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

from grader.errors import InputError
from grader.importers.base import ParsedCard, ParseResult, Skipped, bullet_to_markdown

COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "card id", "card_id"),
    "question": ("front", "question", "term", "q", "prompt", "side 1", "word"),
    "answer": ("back", "answer", "definition", "a", "response", "side 2", "meaning"),
    "footnote": ("footnote", "notes", "note", "extra", "back extra", "explanation", "comment"),
    "tags": ("tags", "tag"),
}
_BR = re.compile(r"<br\s*/?>", re.IGNORECASE)
_SEPARATORS = {"tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|", "space": " "}


def _column_map(header: list[str], path: Path, line: int) -> dict[str, int]:
    names = [name.strip().casefold() for name in header]
    found: dict[str, int] = {}
    for key, aliases in COLUMNS.items():
        for index, name in enumerate(names):
            if name in aliases and key not in found:
                found[key] = index
    for key, label in (("question", "front/question/term"), ("answer", "back/answer/definition")):
        if key not in found:
            shown = ", ".join(h.strip() for h in header) or "(empty)"
            raise InputError(f"header has no {label} column (found: {shown})", path=path, line=line)
    return found


def _field(text: str) -> str:
    lines = _BR.sub("\n", text).replace("\r\n", "\n").split("\n")
    return "\n".join(bullet_to_markdown(line) for line in lines).strip()


def parse(text: str, path: Path, delimiter: str) -> ParseResult:
    result = ParseResult(format="tsv" if delimiter == "\t" else "csv")
    lines = text.splitlines(keepends=True)
    start = 0
    columns_line: str | None = None
    while start < len(lines) and (lines[start].startswith("#") or not lines[start].strip()):
        directive = lines[start].strip()
        if directive.lower().startswith("#separator:"):
            name = directive.split(":", 1)[1].strip().lower()
            delimiter = _SEPARATORS.get(name, name[:1] or delimiter)
        elif directive.lower().startswith("#columns:"):
            columns_line = directive.split(":", 1)[1]
        start += 1
    body = "".join(lines[start:])
    reader = csv.reader(io.StringIO(body, newline=""), delimiter=delimiter, strict=True)
    try:
        if columns_line is not None:
            header_line = start
            header = next(csv.reader([columns_line], delimiter=delimiter))
        else:
            header_line = start + 1
            header = next(reader, [])
        mapping = _column_map(header, path, header_line)
        while True:
            line = start + reader.line_num + 1
            row = next(reader, None)
            if row is None:
                break
            if not any(cell.strip() for cell in row):
                continue
            if len(row) > len(header):
                raise InputError(
                    f"{len(row)} fields, but the header has {len(header)}", path=path, line=line
                )
            cells = {key: _field(row[i]) if i < len(row) else "" for key, i in mapping.items()}
            if not cells["question"] or not cells["answer"]:
                missing = "question" if not cells["question"] else "answer"
                result.skipped.append(Skipped(line=line, reason=f"row has no {missing}"))
                continue
            tags = [t for t in re.split(r"[\s,]+", cells.get("tags", "")) if t]
            result.cards.append(
                ParsedCard(
                    source_id=cells.get("id") or None,
                    question=cells["question"],
                    answer=cells["answer"],
                    footnote=cells.get("footnote") or None,
                    tags=tags,
                    line=line,
                )
            )
    except csv.Error as exc:
        where = start + reader.line_num
        raise InputError(f"malformed {result.format}: {exc}", path=path, line=where) from None
    return result
