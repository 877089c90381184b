"""Words as the offline grader compares them: stems, stopwords, negations and antonyms.

Snowball (Porter 2) English stems, so "deploy" meets "Deployment"; negations with or without
their apostrophe ("dont", "doesn't"); antonym pairs written as words and compared by stem.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from grader.spelling import BARE_NEGATIONS

WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
NEGATION = re.compile(
    r"\b(?:not|no|never|none|nothing|nobody|neither|nor|cannot|without|"
    r"isn't|aren't|wasn't|weren't|don't|doesn't|didn't|won't|can't|couldn't|shouldn't|"
    r"wouldn't|hasn't|haven't|hadn't|mustn't|unable|lack|lacks|"
    + "|".join(sorted(BARE_NEGATIONS))
    + r")\b|n't\b"
)
"""Negation, apostrophes optional: answers typed in a terminal often write "dont" and "isnt"."""
_NOT_ONLY = re.compile(r"\bnot\s+(?:just|only|merely|simply|solely)\b")
"""Not a negation: "systems, not just models" affirms the models and adds the systems."""
NEGATION_WORDS = frozenset(
    [
        "not",
        "no",
        "never",
        "none",
        "nothing",
        "nobody",
        "neither",
        "nor",
        "cannot",
        "without",
        "unable",
        "lack",
        "lacks",
        "t",
        *BARE_NEGATIONS,
    ]
)
_STOPWORD_TEXT = """a an the of to in on at by for from with and or but if then than that this
    these those it its
    is are was were be been being am do does did doing have has had having will would shall should
    can could may might must i you he she we they me him her us them my your his our their what
    which who whom whose when where why how as so such there here also just only very too into
    about over under again further once all any both each few more most other some own same s t
    because while up down out off yes ok well like get gets got one thing things way"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


# Pairs whose swap flips a claim. Matched on stems, both directions.
@functools.cache
def _english_stemmer() -> Any:
    import snowballstemmer

    return snowballstemmer.stemmer("english")


@functools.cache
def negation_stems() -> frozenset[str]:
    """The negation words as they appear among stems ("nobody" stems to "nobodi")."""
    return NEGATION_WORDS | frozenset(stem(word) for word in NEGATION_WORDS)


@functools.lru_cache(maxsize=1 << 16)
def stem(word: str) -> str:
    """The Snowball (Porter 2) English stem: "deployment" and "deploy", "scalable" and
    "scalability", "modelling" and "modeling" meet."""
    return str(_english_stemmer().stemWord(word))


ANTONYM_WORDS: tuple[tuple[str, str], ...] = (
    ("increase", "decrease"),
    ("increase", "reduce"),
    ("more", "less"),
    ("more", "fewer"),
    ("higher", "lower"),
    ("high", "low"),
    ("larger", "smaller"),
    ("bigger", "smaller"),
    ("large", "small"),
    ("open", "close"),
    ("true", "false"),
    ("positive", "negative"),
    ("before", "after"),
    ("same", "different"),
    ("always", "never"),
    ("connected", "separated"),
    ("connect", "disconnect"),
    ("series", "parallel"),
    ("add", "remove"),
    ("start", "stop"),
    ("input", "output"),
    ("online", "offline"),
    ("supervised", "unsupervised"),
    ("overfit", "underfit"),
    ("static", "dynamic"),
    ("manual", "automatic"),
    ("manual", "automated"),
    ("synchronous", "asynchronous"),
    ("upstream", "downstream"),
    ("fast", "slow"),
    ("faster", "slower"),
    ("cheap", "expensive"),
    ("gain", "lose"),
    ("gain", "loss"),
    ("attract", "repel"),
    ("conductor", "insulator"),
    ("complete", "incomplete"),
    ("valid", "invalid"),
    ("correct", "incorrect"),
    ("stable", "unstable"),
    ("accurate", "inaccurate"),
    ("raise", "lower"),
    ("maximize", "minimize"),
    ("maximum", "minimum"),
    ("inside", "outside"),
    ("push", "pull"),
    ("hot", "cold"),
    ("warm", "cool"),
    ("first", "last"),
    ("earlier", "later"),
    ("allow", "prevent"),
    ("enable", "disable"),
    ("include", "exclude"),
    ("accept", "reject"),
)
"""Word pairs of opposite meaning; compared by stem, so "decreases" flips "increase"."""


ANTONYMS: tuple[tuple[str, str], ...] = tuple(
    dict.fromkeys((stem(a), stem(b)) for a, b in ANTONYM_WORDS)
)
ANTONYM_SURFACE = frozenset(word for pair in ANTONYM_WORDS for word in pair)
PREFIXED_OPPOSITE = {
    a: b for a, b in ANTONYMS if b.endswith(a) and b[: len(b) - len(a)] in ("in", "un", "dis", "a")
}
"""Antonyms that are their word with a negating prefix ("accurate" / "inaccurate"): saying the
one where the reference says the other, in the reference's own words, is a negation flip."""


def stems_without_negation(text: str) -> frozenset[str]:
    """The content stems of `text` less its negations: "no monitoring" and "They lack
    monitoring" say the same about monitoring."""
    return frozenset(content_stems(text)) - negation_stems()


def content_stems(text: str) -> list[str]:
    words = (_uncontracted(w) for w in WORD.findall(text.lower()))
    return [stem(w) for w in words if w not in STOPWORDS]


def _uncontracted(word: str) -> str:
    """A negation's contraction is "not", as written out: "isn't" and "don't" say "is not" and
    "do not"."""
    base, apostrophe, rest = word.partition("'")
    if apostrophe and rest == "t" and base.endswith("n"):
        return "not"
    return word


@functools.lru_cache(maxsize=1 << 14)
def text_facts(text: str) -> tuple[int, frozenset[str], int, bool]:
    """Content-stem count, content-stem set, length in words and negation of `text`, memoised: a
    batch measures each card text once per answer and each answer once per rubric point. A long
    text that mostly repeats itself (20 words or more, under a tenth of them distinct: "banana
    banana ...") is as long as its distinct words; no training answer is (routing tables and
    sums of probabilities repeat a lot, but not that much)."""
    stems = content_stems(text)
    words = WORD.findall(text.lower())
    distinct = len(set(words))
    length = distinct if len(words) >= 20 and distinct < 0.1 * len(words) else len(words)
    return len(stems), frozenset(stems), length, has_negation(text)


def has_negation(text: str) -> bool:
    return after_negation(text) is not None


def after_negation(text: str) -> str | None:
    """`text` (lowercase) after its first negation, or None without one ("not only" is none)."""
    plain = _NOT_ONLY.sub(" ", text.lower())
    negation = NEGATION.search(plain)
    return None if negation is None else plain[negation.end() :]
