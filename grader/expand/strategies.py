"""Deterministic expansion strategies: new cards derived from a deck's own text, no model needed.

- `reverse`: a definitional card ("What is 'data drift'?") asked the other way round (definition
  to term).
- `list-item`: one card per item of a list answer: the list shown with that item blanked.
- `cloze`: a key term of the deck blanked out of a card's footnote.

Each returns candidates in a stable order; the same deck always gives the same candidates, so
re-running `grader expand` after a review proposes the next ones (earlier ones are duplicates).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

from grader.models import Card, CardProposal, utc_now_iso
from grader.rubric import derive_key_points, list_items, plain

StrategyName = Literal["reverse", "list-item", "cloze"]
DETERMINISTIC: tuple[StrategyName, ...] = ("reverse", "list-item", "cloze")
BLANK = "____"

_QUOTED = re.compile(
    r"\*\*(.+?)\*\*|['\"\u2018\u201c]([^'\"\u2018\u2019\u201c\u201d]{2,60})['\"\u2019\u201d]"
)
_VERB = r"(?:mean|refer to|stand for|entail|involve|do)"
_DEFINITIONAL = re.compile(
    r"^\s*what\s+(?:is|are|does|do)\s+(?:a\s+|an\s+|the\s+)?(?P<term>.+?)"
    rf"(?:\s+{_VERB})?(?P<rest>\s+(?:in|for|within|of)\s+[^?]+?)?(?:\s+{_VERB})?\s*\?\s*$",
    re.IGNORECASE,
)
_NOT_A_TERM = re.compile(
    r"^(?:the\s+)?(?:difference|main|goal|purpose|role|benefit|advantage|output|one|some|examples?|"
    r"final|key|focus|responsibility|included|lecture|real|two|three|four|five|first|second|third|"
    r"last|next|longest|shortest|best|biggest|ultra-short|short|summary|reason|idea|result|most|"
    r"least|primary|important|common|typical|usual)\b",
    re.IGNORECASE,
)
_MAX_TERM_WORDS = 4
_MIN_LIST_ITEMS = 2
_MAX_LIST_ITEMS = 10
_MAX_ENUM_ITEM_WORDS = 4
_CLAUSE_STARTS = frozenset(
    ["they", "it", "the", "to", "a", "an", "this", "these", "we", "you", "he", "she"]
)
_STOPWORDS = frozenset(
    """a an and are as at be been but by can do does for from has have how in into is it its
    it's of on or that the their them then there these they this to was were what when where
    which who why will with you your not no more most than also just only very each other such
    may might should would could about after before over under while being which involves
    includes ensures helps provides makes means using used uses make help ensure include
    involve determine understanding important crucial essential effectively""".split()  # noqa: SIM905
)
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9/+-]*[A-Za-z0-9]|[A-Za-z]")
_MIN_FREQUENT_WORD_LEN = 5
_MIN_FREQUENT_WORD_COUNT = 3
_MAX_TERM_CARD_SHARE = 0.2
"""A word in more cards than this share is too generic to blank ("model" in an ML deck)."""


def _proposal(
    *,
    strategy: StrategyName,
    source: Card,
    question: str,
    answer: str,
    footnote: str | None,
    rationale: str,
    make_id: Callable[[], str],
    now: str,
) -> CardProposal:
    return CardProposal(
        id=make_id(),
        question=question,
        answer=answer,
        footnote=footnote,
        tags=list(source.tags),
        builds_on=[source.id],
        rationale=rationale,
        strategy=strategy,
        created_at=now,
    )


def defined_term(card: Card) -> tuple[str, str] | None:
    """The term a definitional question asks about, and its qualifier ("in ML"), if any."""
    match = _DEFINITIONAL.match(card.question)
    if match is None:
        return None
    raw_term = match.group("term")
    if _NOT_A_TERM.match(plain(raw_term)):
        return None
    quoted = _QUOTED.search(raw_term)
    if quoted:
        term = quoted.group(1) or quoted.group(2)
        outside = _QUOTED.sub(" ", raw_term).split()
        if any(word.lower() not in ("a", "an", "the") for word in outside):
            return None
    else:
        term = plain(raw_term)
        if len(term.split()) > _MAX_TERM_WORDS or _NOT_A_TERM.match(term):
            return None
    rest = plain(match.group("rest") or "")
    return plain(term).strip(" '\"\u2018\u2019\u201c\u201d"), rest


def reverse(cards: Sequence[Card], make_id: Callable[[], str], now: str) -> list[CardProposal]:
    """Definition-to-term cards from definitional cards with a prose answer."""
    out: list[CardProposal] = []
    for card in cards:
        found = defined_term(card)
        if found is None or list_items(card.answer):
            continue
        term, qualifier = found
        definition = plain(card.answer).rstrip()
        where = f" ({qualifier})" if qualifier else ""
        out.append(
            _proposal(
                strategy="reverse",
                source=card,
                question=f"Which term{where} is described by: “{definition}”?",
                answer=term,
                footnote=card.footnote,
                rationale=f"Reverse of {card.id}: recall the term from its definition.",
                make_id=make_id,
                now=now,
            )
        )
    return out


def answer_items(card: Card) -> list[str]:
    """Items of a list answer: its bullets, else a short enumeration ("A, B, and C")."""
    items = list_items(card.answer)
    if items:
        return items
    points = derive_key_points(card.answer)
    # Key points split from coordinated verbs ("Builds data pipelines" from "Builds and manages
    # data pipelines and ETL systems") are not in the answer as written, so not a list to blank.
    answer = plain(card.answer)
    if len(points) >= 3 and all(_is_list_entry(p) and p in answer for p in points):
        return points
    return []


def _is_list_entry(text: str) -> bool:
    """A short noun-phrase-like entry of an enumeration (not a clause such as "They lack X")."""
    words = text.split()
    return 0 < len(words) <= _MAX_ENUM_ITEM_WORDS and words[0].lower() not in _CLAUSE_STARTS


def list_item(cards: Sequence[Card], make_id: Callable[[], str], now: str) -> list[CardProposal]:
    """One card per list item, ordered item-major so a small `-n` spreads over many cards."""
    per_card: list[list[CardProposal]] = []
    for card in cards:
        items = answer_items(card)
        if not _MIN_LIST_ITEMS <= len(items) <= _MAX_LIST_ITEMS:
            per_card.append([])
            continue
        made: list[CardProposal] = []
        for index, item in enumerate(items):
            shown = [BLANK if i == index else other for i, other in enumerate(items)]
            listing = "\n".join(f"- {entry}" for entry in shown)
            made.append(
                _proposal(
                    strategy="list-item",
                    source=card,
                    question=f"{plain(card.question)}\n\nOne item is missing:\n\n{listing}\n\n"
                    "Which item is missing?",
                    answer=item,
                    footnote=card.footnote,
                    rationale=f"Item {index + 1} of {len(items)} of {card.id}'s list, on its own.",
                    make_id=make_id,
                    now=now,
                )
            )
        per_card.append(made)
    return _interleave(per_card)


def key_terms(cards: Sequence[Card]) -> list[str]:
    """The deck's key terms: emphasised or quoted spans and defined terms, then recurring words."""
    terms: list[str] = []
    for card in cards:
        for text in (card.question, card.answer, card.footnote or ""):
            for match in _QUOTED.finditer(text):
                terms.append(plain(match.group(1) or match.group(2)))
        found = defined_term(card)
        if found:
            terms.append(found[0])
    # Recurring words of questions and answers (what the deck is about), counted once per card.
    counts: Counter[str] = Counter()
    for card in cards:
        counts.update({w.lower() for w in _WORD.findall(f"{card.question} {card.answer}")})
    too_common = max(_MIN_FREQUENT_WORD_COUNT, int(len(cards) * _MAX_TERM_CARD_SHARE))
    frequent = [
        word
        for word, count in counts.most_common()
        if _MIN_FREQUENT_WORD_COUNT <= count <= too_common
        and len(word) >= _MIN_FREQUENT_WORD_LEN
        and word not in _STOPWORDS
    ]
    # Emphasised terms longest first (so "data drift" wins over "data"), then recurring words by
    # how many cards use them. A term in more cards than `too_common` is what the whole deck is
    # about ("MLOps" in an MLOps deck): blanking it asks for nothing, so it is left out too.
    in_cards = _cards_with(terms, [f"{c.question} {c.answer} {c.footnote or ''}" for c in cards])
    specific = [t for t in terms if in_cards[t.lower()] <= too_common]
    ranked = sorted(specific, key=lambda t: (-len(t.split()), -len(t))) + frequent
    unique: dict[str, str] = {}
    for term in ranked:
        key = term.lower().strip(" .,:;")
        if key and len(key) > 2 and key not in _STOPWORDS and len(key.split()) <= _MAX_TERM_WORDS:
            unique.setdefault(key, term.strip(" .,:;"))
    return list(unique.values())


def _cards_with(terms: Sequence[str], texts: Sequence[str]) -> Counter[str]:
    """How many of `texts` mention each term (lower-cased), in one pass over each text: a
    pattern per term and text was quadratic, 71 s on a 2,000-card deck."""
    unique = sorted({t.lower() for t in terms if t.strip()}, key=len, reverse=True)
    counts: Counter[str] = Counter()
    if not unique:
        return counts
    alternation = "|".join(re.escape(t) for t in unique)
    pattern = re.compile(rf"(?<![\w-])(?:{alternation})(?![\w-])", re.IGNORECASE)
    for text in texts:
        counts.update({match.lower() for match in pattern.findall(text)})
    return counts


def _term_pattern(term: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-]){re.escape(term)}(?![\w-])", re.IGNORECASE)


def cloze(cards: Sequence[Card], make_id: Callable[[], str], now: str) -> list[CardProposal]:
    """One cloze per footnote: the deck's longest key term in it, blanked everywhere it occurs."""
    patterns = [(term, _term_pattern(term)) for term in key_terms(cards)]
    out: list[CardProposal] = []
    for card in cards:
        if not card.footnote:
            continue
        footnote = plain(card.footnote)
        for term, pattern in patterns:
            match = pattern.search(footnote)
            if match is None:
                continue
            blanked = pattern.sub(BLANK, footnote)
            if len(blanked.replace(BLANK, "").split()) < 3:
                continue
            out.append(
                _proposal(
                    strategy="cloze",
                    source=card,
                    question=f"Fill in the blank: {blanked}",
                    answer=match.group(0),
                    footnote=f"From the card “{plain(card.question)}”: {footnote}",
                    rationale=f"Cloze on the key term “{term}” in {card.id}'s footnote.",
                    make_id=make_id,
                    now=now,
                )
            )
            break
    return out


_STRATEGIES: dict[
    StrategyName, Callable[[Sequence[Card], Callable[[], str], str], list[CardProposal]]
]
_STRATEGIES = {"reverse": reverse, "list-item": list_item, "cloze": cloze}


def propose_deterministic(
    cards: Sequence[Card],
    strategies: Iterable[StrategyName],
    make_id: Callable[[], str],
    now: str | None = None,
) -> list[CardProposal]:
    """Candidates of the given strategies, interleaved round-robin for variety."""
    stamp = now or utc_now_iso()
    return _interleave([_STRATEGIES[name](cards, make_id, stamp) for name in strategies])


def _interleave(groups: Sequence[Sequence[CardProposal]]) -> list[CardProposal]:
    out: list[CardProposal] = []
    longest = max((len(g) for g in groups), default=0)
    for index in range(longest):
        out.extend(group[index] for group in groups if index < len(group))
    return out
