"""Heuristic rubrics: a card's key points derived from its reference answer.

A bulleted answer gives one point per bullet; prose is split into its claims (sentences, `;`
clauses, bare enumerations such as "Design, Development, and Operations", and coordinated
predicates such as "Builds and manages data pipelines and ETL systems", see `split_coordination`).
A rubric stored in the deck (written by an author or by `grader rubric`) always wins over this
derivation.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from grader.models import Card

_BULLET = re.compile(r"^\s*(?:[-*•‣◦]|\d+[.)])\s+(.*\S)\s*$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_ENUM_SPLIT = re.compile(r"\s*,\s*(?:and\s+|or\s+)?|\s+(?:and|or)\s+")
_PARENTHESISED = re.compile(r"\([^()]*\)")
_LAST_ITEM_BY_OR = re.compile(r"(?:,\s*|\s)or\s+[^,]*$")
_MARKUP = re.compile(r"\*\*|__|`")
_ACRONYM = re.compile(r"\s*\((?P<acronym>[A-Z][A-Za-z]*[A-Z][A-Za-z]*)\)")
_OXFORD_OR = re.compile(r",\s*or\s+[^,]*$")
_MAX_ENUM_ITEM_WORDS = 4
LIST_ITEM_WORDS = _MAX_ENUM_ITEM_WORDS
"""A key point this short is a list item (an enumeration's items are at most this long)."""
_VERB_PAIR = re.compile(
    r"^(?:(?P<lead>\w+)\s+)??(?P<first>[A-Za-z]+)\s+and\s+(?P<second>[a-z]+)\s+(?P<rest>\S.*)$"
)
_OBJECT_PAIR = re.compile(r"^(?P<first>[^,;]+?)\s+and\s+(?P<second>[^,;]+)$")
# A subject that makes the bare words after it verbs ("to build and run", "they build and run").
_PREDICATE_LEADS = frozenset(["to", "they", "we", "you", "i"])
# After a noun pair comes its verb ("Inputs and outputs are logged"), after a verb pair its object.
_AUXILIARY_TEXT = """is are was were be been being am has have had do does did can could will
    would shall should may might must"""
_AUXILIARIES = frozenset(_AUXILIARY_TEXT.split())
_MIN_OBJECT_WORDS = 2


def plain(text: str) -> str:
    """Text with Markdown emphasis removed and whitespace collapsed."""
    return " ".join(_MARKUP.sub("", text).split())


def list_items(answer: str) -> list[str]:
    """The bullet items of a list answer, or [] when the answer is not a list."""
    items = [m.group(1) for line in answer.splitlines() if (m := _BULLET.match(line))]
    return [plain(item) for item in items if plain(item)]


def _inflection(word: str) -> str:
    word = word.lower()
    for ending in ("ing", "ed"):
        if word.endswith(ending):
            return ending
    return "s" if word.endswith("s") and not word.endswith("ss") else ""


def _objects(rest: str) -> list[str]:
    """A verb pair's object split into its conjuncts when both have several words ("data
    pipelines and ETL systems"); a one-word pair ("inputs and outputs") stays whole."""
    match = _OBJECT_PAIR.match(rest)
    if match is None:
        return [rest]
    parts = [match.group("first"), match.group("second")]
    counts = [len(part.split()) for part in parts]
    if " and " in parts[1] or not all(
        _MIN_OBJECT_WORDS <= n <= _MAX_ENUM_ITEM_WORDS for n in counts
    ):
        return [rest]
    return parts


def split_coordination(clause: str) -> list[str]:
    """A clause opening with two coordinated verbs, one claim per verb and object.

    "Builds and manages data pipelines and ETL systems" gives "Builds data pipelines", "Builds
    ETL systems", "manages data pipelines", "manages ETL systems": each verb applies to each
    object. The pair must open the clause (or follow "to" or a subject pronoun) and carry the
    same verb ending; without a lead-in it must end in -s, -ed or -ing. A pair followed by an
    auxiliary is a subject ("Inputs and outputs are logged") and stays whole, as does any clause
    of another shape; the result is then `[clause]`.
    """
    match = _VERB_PAIR.match(clause)
    if match is None:
        return [clause]
    lead, first, second, rest = match.group("lead", "first", "second", "rest")
    if lead is not None and lead.lower() not in _PREDICATE_LEADS:
        return [clause]
    ending = _inflection(first)
    if ending != _inflection(second) or (lead is None and not ending):
        return [clause]
    if rest.split()[0].lower() in _AUXILIARIES:
        return [clause]
    prefix = f"{lead} " if lead else ""
    return [f"{prefix}{verb} {obj}" for verb in (first, second) for obj in _objects(rest)]


def _enumeration(clause: str) -> list[str]:
    """The items of a bare enumeration of three or more ("Design, Development, and Operations"),
    else `[clause]`. Commas inside parentheses are not separators: "(web app, backend, etc.)"
    gives examples, not claims. Items joined by "or" are alternatives, any one of which answers,
    so they stay one claim ("They lack monitoring, robust pipelines, or stakeholder alignment")."""
    outside = _outside_parentheses(clause)
    if outside.count(",") < 2 or _LAST_ITEM_BY_OR.search(outside):
        return [clause]
    items = [p for p in _enumerated(clause, outside) if p]
    if all(len(p.split()) <= _MAX_ENUM_ITEM_WORDS for p in items[1:]):
        return items
    return [clause]


def _outside_parentheses(text: str) -> str:
    """`text` with parenthesised spans blanked (same length), so their commas split nothing."""
    return _PARENTHESISED.sub(lambda m: "\0" * len(m.group(0)), text)


def _enumerated(text: str, outside: str) -> list[str]:
    """`text` cut at the enumeration separators found in `outside` (see _outside_parentheses),
    each part stripped of spaces and full stops."""
    parts: list[str] = []
    start = 0
    for match in _ENUM_SPLIT.finditer(outside):
        parts.append(text[start : match.start()])
        start = match.end()
    parts.append(text[start:])
    return [p.strip(" .") for p in parts]


class Alternative(NamedTuple):
    """One way to answer a point in full: `text`, whose own words are `item` (the rest, such as
    the lead-in of an "or" list, is shared by every alternative of the point)."""

    text: str
    item: str


def _or_list(point: str) -> list[Alternative]:
    """ "They lack monitoring, robust pipelines, or stakeholder alignment" gives "They lack
    monitoring", "They lack robust pipelines", "They lack stakeholder alignment": the words
    before the first item (all but the first part's last word) lead every item. Three or more
    short items, ", or" before the last (without that comma, "no flow control, no connect or
    disconnect" would read as alternatives); else []."""
    outside = _outside_parentheses(point)
    if outside.count(",") < 2 or not _OXFORD_OR.search(outside):
        return []
    items = _enumerated(point, outside)
    if not all(items) or not all(len(p.split()) <= _MAX_ENUM_ITEM_WORDS for p in items[1:]):
        return []
    *lead, first = items[0].split()
    prefix = " ".join(lead) + " " if lead else ""
    return [Alternative(prefix + item, item) for item in (first, *items[1:])]


def _acronym(point: str) -> list[Alternative]:
    """ "Amazon Web Services (AWS)" gives "Amazon Web Services" and "AWS": a name followed by
    its acronym in parentheses names one thing, so either answers the point. The name is the
    words just before the parenthesis whose initials spell the acronym ("Quality of Service
    (QoS)"); else []."""
    match = _ACRONYM.search(point)
    if match is None:
        return []
    acronym = match.group("acronym")
    words = point[: match.start()].split()
    initials = "".join(w[0] for w in words).lower()
    if len(acronym) > len(words) or not initials.endswith(acronym.lower()):
        return []
    name = " ".join(words[-len(acronym) :])
    before = " ".join(words[: -len(acronym)])
    after = point[match.end() :]
    return [
        Alternative(" ".join(f"{before} {name}{after}".split()), name),
        Alternative(" ".join(f"{before} {acronym}{after}".split()), acronym),
    ]


@functools.lru_cache(maxsize=4096)
def alternatives(point: str) -> tuple[Alternative, ...]:
    """Texts any one of which answers `point` in full: the items of an "or" list, or a name and
    its acronym; [] when the point has no alternatives. The offline grader scores a point as its
    best-matching alternative (or the point itself, when that matches better)."""
    return tuple(_or_list(point) or _acronym(point))


def _claims(sentence: str) -> list[str]:
    clauses = [c.strip(" .") for c in sentence.split(";")]
    claims: list[str] = []
    for clause in clauses:
        if not clause:
            continue
        coordinated = split_coordination(clause)
        claims.extend(coordinated if len(coordinated) > 1 else _enumeration(clause))
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
    """The rubric a grader uses for `card`: the stored one, else (none stored, or stored for an
    earlier version of the answer) the heuristic derivation from the answer as it is."""
    if card.rubric and not card.rubric_is_stale():
        return list(card.rubric)
    return derive_key_points(card.answer)


_COUNT_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_ASKED_COUNT = re.compile(
    r"\b(?:name|list|give|state|what\s+(?:is|are)|which\s+(?:is|are))\s+(?:the\s+|any\s+)?"
    r"(?:\*\*)?(one|two|three|four|five|six|\d)\b(?!\s+(?:line|sentence|word)s?\b)",
    re.IGNORECASE,
)
_ASKED_ONE = re.compile(r"\b(?:an?\s+example|one\s+(?:of|example))\b", re.IGNORECASE)
_ASKED_SOME = re.compile(r"\b(?:some|a\s+few|any|examples\s+of)\b", re.IGNORECASE)
OPEN_LIST_POINTS = 3
"""Points a question asking for "some" of a longer list wants."""


def required_points(question: str, points: int) -> int:
    """How many of a card's key points its question asks for: "What is one reason ..." wants
    one, "Name two ..." two, "What are some components ..." three; else all of them. Never
    more than there are ("the first two steps" of a two-point list wants both)."""
    text = plain(question)
    asked = _ASKED_COUNT.search(text)
    if asked is not None:
        word = asked.group(1).lower()
        wanted = _COUNT_WORDS.get(word) or int(word)
    elif _ASKED_ONE.search(text):
        wanted = 1
    elif _ASKED_SOME.search(text):
        wanted = OPEN_LIST_POINTS
    else:
        return points
    return max(1, min(points, wanted))
