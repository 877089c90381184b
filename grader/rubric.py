"""Heuristic rubrics: a card's key points derived from its reference answer.

A bulleted answer gives one point per bullet; prose is split into its claims (sentences, `;`
clauses, and bare enumerations such as "Design, Development, and Operations"). A rubric stored in
the deck (written by an author or by `grader rubric`) always wins over this derivation.
"""

from __future__ import annotations

import re

from grader.models import Card

_BULLET = re.compile(r"^\s*(?:[-*•‣◦]|\d+[.)])\s+(.*\S)\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_ENUM_SPLIT = re.compile(r"\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+")
_MARKUP = re.compile(r"\*\*|__|`")
_MAX_ENUM_ITEM_WORDS = 4


def plain(text: str) -> str:
    """Text with Markdown emphasis removed and whitespace collapsed."""
    return " ".join(_MARKUP.sub("", text).split())


def list_items(answer: str) -> list[str]:
    """The bullet items of a list answer, or [] when the answer is not a list."""
    items = [m.group(1) for line in answer.splitlines() if (m := _BULLET.match(line))]
    return [plain(item) for item in items if plain(item)]


def _claims(sentence: str) -> list[str]:
    clauses = [c.strip(" .") for c in sentence.split(";")]
    claims: list[str] = []
    for clause in clauses:
        if not clause:
            continue
        parts = [p.strip(" .") for p in _ENUM_SPLIT.split(clause) if p and p.strip(" .")]
        is_enumeration = clause.count(",") >= 2 and all(
            len(p.split()) <= _MAX_ENUM_ITEM_WORDS for p in parts[1:]
        )
        claims.extend(parts if is_enumeration else [clause])
    return claims


def derive_key_points(answer: str) -> list[str]:
    """Key points of a reference answer: its bullets, else its claims."""
    items = list_items(answer)
    if items:
        return items
    lead_in_removed = [line for line in answer.splitlines() if line.strip()]
    text = plain(" ".join(lead_in_removed))
    points: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        points.extend(_claims(sentence))
    return points or [text]


def rubric_for(card: Card) -> list[str]:
    """The rubric a grader uses for `card`: the stored one, else the heuristic derivation."""
    return list(card.rubric) if card.rubric else derive_key_points(card.answer)
