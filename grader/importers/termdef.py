"""The term/definition text export: a title line, a `(N cards)` line, then question and answer
lines alternating. Blank lines are ignored."""

from __future__ import annotations

from pathlib import Path

from grader.errors import InputError
from grader.importers.base import ParsedCard, ParseResult, Skipped, announced_count, count_warning

FORMAT = "termdef"


def parse(text: str, path: Path) -> ParseResult:
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1)]
    content = [(number, line) for number, line in lines if line]
    result = ParseResult(format=FORMAT)
    if len(content) >= 2 and announced_count(content[1][1]) is not None:
        result.title = content[0][1]
        result.announced = announced_count(content[1][1])
        content = content[2:]
    elif content and announced_count(content[0][1]) is not None:
        result.announced = announced_count(content[0][1])
        content = content[1:]
    if not content:
        raise InputError("no cards found (expected question and answer lines)", path=path, line=1)
    for index in range(0, len(content) - 1, 2):
        (line, question), (_, answer) = content[index], content[index + 1]
        result.cards.append(ParsedCard(question=question, answer=answer, line=line))
    if len(content) % 2:
        line, question = content[-1]
        result.skipped.append(Skipped(line=line, reason=f"question without an answer: {question}"))
    count_warning(result)
    return result
