"""The numbered export: a title, a `(N cards)` line, then blocks each starting with a card number.

Two layouts are mixed in one file:

- `N`, `Q`, question, `A`, answer (possibly bulleted), a footnote paragraph, and a self-rating
  widget ("How well did you know this? 1 Not at all 2 3 4 5 Perfectly"), which is dropped;
- `N`, question, then `answer ## Footnote footnote` (an inline ` * a * b` list becomes list lines).

A block starts only at the next expected number, so the widget's digits never start a card.
"""

from __future__ import annotations

from pathlib import Path

from grader.errors import InputError
from grader.importers.base import (
    ParsedCard,
    ParseResult,
    Skipped,
    announced_count,
    bullet_to_markdown,
    count_warning,
    inline_list,
)

FORMAT = "numbered"
WIDGET_START = "How well did you know this?"
_WIDGET_TOKENS = {"1", "2", "3", "4", "5", "Not at all", "Perfectly"}
FOOTNOTE_MARK = "## Footnote"

Line = tuple[int, str]


def _drop_widgets(lines: list[Line]) -> list[Line]:
    kept: list[Line] = []
    index = 0
    while index < len(lines):
        if lines[index][1].strip() != WIDGET_START:
            kept.append(lines[index])
            index += 1
            continue
        index += 1
        while index < len(lines) and lines[index][1].strip() in _WIDGET_TOKENS:
            token = lines[index][1].strip()
            index += 1
            if token == "Perfectly":
                break
    return kept


def _strip_blank_ends(lines: list[Line]) -> list[Line]:
    start, end = 0, len(lines)
    while start < end and not lines[start][1].strip():
        start += 1
    while end > start and not lines[end - 1][1].strip():
        end -= 1
    return lines[start:end]


def _paragraphs(lines: list[Line]) -> list[list[str]]:
    paragraphs: list[list[str]] = [[]]
    for _, line in lines:
        if line.strip():
            paragraphs[-1].append(bullet_to_markdown(line))
        elif paragraphs[-1]:
            paragraphs.append([])
    return [p for p in paragraphs if p]


def _split_footnote(text: str) -> tuple[str, str | None]:
    if FOOTNOTE_MARK not in text:
        return text.strip(), None
    answer, footnote = text.split(FOOTNOTE_MARK, 1)
    return answer.strip(), footnote.strip() or None


def _header(lines: list[Line], result: ParseResult) -> list[Line]:
    content = _strip_blank_ends(lines)
    if content and not content[0][1].strip().isdigit():
        result.title = content[0][1].strip()
        content = _strip_blank_ends(content[1:])
    if content and (count := announced_count(content[0][1])) is not None:
        result.announced = count
        content = _strip_blank_ends(content[1:])
    return content


def _blocks(lines: list[Line], path: Path) -> list[tuple[int, int, list[Line]]]:
    """(card number, line of the number, body lines) for each block."""
    if not lines:
        raise InputError("no cards found (expected numbered cards)", path=path, line=1)
    first_line, first = lines[0]
    if not first.strip().isdigit():
        raise InputError(
            f"expected a card number, found {first.strip()[:40]!r}", path=path, line=first_line
        )
    blocks: list[tuple[int, int, list[Line]]] = []
    expected = int(first.strip())
    for number, line in lines:
        if line.strip() == str(expected):
            blocks.append((expected, number, []))
            expected += 1
        else:
            blocks[-1][2].append((number, line))
    return blocks


def _qa_card(
    card_number: int, line: int, body: list[Line], path: Path
) -> ParsedCard | Skipped | None:
    marks = [index for index, (_, text) in enumerate(body) if text.strip() == "A"]
    if not marks:
        raise InputError(
            f"card {card_number}: a `Q` line without an `A` line", path=path, line=body[0][0]
        )
    question_lines = _strip_blank_ends(body[1 : marks[0]])
    answer_part = _strip_blank_ends(body[marks[0] + 1 :])
    question = "\n".join(text.strip() for _, text in question_lines)
    joined = "\n".join(text for _, text in answer_part)
    if FOOTNOTE_MARK in joined:
        answer, footnote = _split_footnote(joined)
        answer = "\n".join(bullet_to_markdown(x) for x in answer.splitlines())
    else:
        paragraphs = _paragraphs(answer_part)
        footnote = "\n".join(paragraphs[-1]) if len(paragraphs) >= 2 else None
        kept = paragraphs[:-1] if len(paragraphs) >= 2 else paragraphs
        answer = "\n\n".join("\n".join(p) for p in kept)
    return _card_or_skip(card_number, line, question, answer, footnote)


def _inline_card(card_number: int, line: int, body: list[Line]) -> ParsedCard | Skipped:
    question = body[0][1].strip()
    answer, footnote = _split_footnote("\n".join(text for _, text in body[1:]))
    lines = [inline_list(x) for x in answer.splitlines() if x.strip()]
    answer = "\n".join(bullet_to_markdown(x) for x in "\n".join(lines).splitlines())
    return _card_or_skip(card_number, line, question, answer, footnote)


def _card_or_skip(
    card_number: int, line: int, question: str, answer: str, footnote: str | None
) -> ParsedCard | Skipped:
    if not question and not answer:
        return Skipped(line=line, reason=f"card {card_number} is empty")
    if not question:
        return Skipped(line=line, reason=f"card {card_number} has no question")
    if not answer:
        return Skipped(line=line, reason=f"card {card_number} has no answer")
    return ParsedCard(question=question, answer=answer, footnote=footnote, line=line)


def parse(text: str, path: Path) -> ParseResult:
    result = ParseResult(format=FORMAT)
    lines = _header(_drop_widgets(list(enumerate(text.splitlines(), 1))), result)
    for card_number, line, raw_body in _blocks(lines, path):
        body = _strip_blank_ends(raw_body)
        if not body:
            result.skipped.append(Skipped(line=line, reason=f"card {card_number} is empty"))
            continue
        if body[0][1].strip() == "Q":
            parsed = _qa_card(card_number, line, body, path)
        else:
            parsed = _inline_card(card_number, line, body)
        if isinstance(parsed, Skipped):
            result.skipped.append(parsed)
        elif parsed is not None:
            result.cards.append(parsed)
    count_warning(result)
    return result
