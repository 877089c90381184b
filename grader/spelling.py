"""Matches a learner's misspellings of a card's own words back to those words.

A typed answer such as "desing, model developement, operatoins" names the right things; graded
as written, its misspelled words match neither the reference's words nor (through WordPiece
fragments) its meaning. Before the offline grader measures an answer, each answer word that is
not a known English word and sits within a small edit distance of exactly one of the card's
words is replaced by that word. What the learner wrote is still what they are shown.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

_WORD = re.compile(r"[A-Za-z]+")
MIN_LENGTH = 4
"""Shorter words are never respelled: one edit turns most of them into another word."""
BARE_NEGATIONS = frozenset(
    {
        "dont",
        "doesnt",
        "didnt",
        "wont",
        "cant",
        "cannot",
        "isnt",
        "arent",
        "wasnt",
        "werent",
        "couldnt",
        "shouldnt",
        "wouldnt",
        "hasnt",
        "havent",
        "hadnt",
        "mustnt",
        "aint",
        "neednt",
    }
)
"""Negations typed without the apostrophe ("wont" is not a slip for "want")."""


def max_edits(length: int) -> int:
    """Edits (optimal string alignment: a swap of neighbours counts once) allowed for a word of
    `length` letters: two only in long words, where two slips rarely make another word."""
    return 1 if length < 9 else 2


def words_of(texts: Iterable[str]) -> frozenset[str]:
    """The distinct lowercase words of `texts` long enough to be respelled into."""
    return frozenset(
        word for text in texts for word in _WORD.findall(text.lower()) if len(word) >= MIN_LENGTH
    )


class Respeller:
    """Respells answer words into card words. `known_words` are never respelled: a real word
    the learner wrote (say "stable" where the card says "unstable") is what they meant."""

    def __init__(self, known_words: frozenset[str]) -> None:
        self._known = known_words | BARE_NEGATIONS

    def respell(self, text: str, vocabulary: frozenset[str]) -> str:
        """`text` with each misspelled card word replaced by the card's spelling (lowercase)."""
        return self.respell_noting(text, vocabulary)[0]

    def respell_noting(self, text: str, vocabulary: frozenset[str]) -> tuple[str, list[str]]:
        """`respell`, and the card words it put back, in the order they occur."""
        restored: list[str] = []
        if not vocabulary:
            return text, restored

        def replace(match: re.Match[str]) -> str:
            word = match.group(0)
            closest = self._closest(word.lower(), vocabulary)
            if closest is None:
                return word
            if not same_in_other_spelling(word.lower(), closest):
                restored.append(closest)
            return closest

        return _WORD.sub(replace, text), restored

    def _closest(self, word: str, vocabulary: frozenset[str]) -> str | None:
        if len(word) < MIN_LENGTH or word in vocabulary:
            return None
        # A real word too, but the card's word in the other spelling ("organise" for the
        # card's "organize"): its stem would not meet the card's ("organis", "organ").
        other_spelling = _by_american_spelling(vocabulary).get(american_spelling(word))
        if other_spelling is not None:
            return other_spelling
        if word in self._known:
            return None
        from rapidfuzz.distance import OSA

        limit = max_edits(len(word))
        ranked = sorted(
            (distance, abs(len(candidate) - len(word)), candidate)
            for candidate in vocabulary
            if _may_be_a_slip_for(word, candidate)
            for distance in (OSA.distance(word, candidate, score_cutoff=limit),)
            if distance <= limit
        )
        if not ranked or (len(ranked) > 1 and ranked[0][:2] == ranked[1][:2]):
            return None  # nothing close, or a tie: no way to tell which word was meant
        return ranked[0][2]


_SPELLING_VARIANTS = (
    ("isation", "ization"),
    ("ise", "ize"),
    ("ising", "izing"),
    ("ised", "ized"),
    ("yse", "yze"),
    ("our", "or"),
    ("lling", "ling"),
    ("lled", "led"),
    ("tre", "ter"),
    ("ogue", "og"),
)


def american_spelling(word: str) -> str:
    """`word` with British endings in American form ("organise" -> "organize"); a crude
    rewrite, used only to compare two words."""
    for british, us in _SPELLING_VARIANTS:
        word = word.replace(british, us)
    return word


@functools.lru_cache(maxsize=256)
def _by_american_spelling(vocabulary: frozenset[str]) -> dict[str, str]:
    """The card words by their American form, leaving out forms two card words share."""
    forms: dict[str, list[str]] = {}
    for word in vocabulary:
        forms.setdefault(american_spelling(word), []).append(word)
    return {form: words[0] for form, words in forms.items() if len(words) == 1}


def same_in_other_spelling(word: str, other: str) -> bool:
    """Whether two words are one word in British and American spelling ("visualisations",
    "visualizations"; "modelling", "modeling"): matched, but no spelling to check."""
    return word != other and american_spelling(word) == american_spelling(other)


def _may_be_a_slip_for(word: str, candidate: str) -> bool:
    """Whether `word` can be a mistyped `candidate` at all. Typing slips rarely hit the first
    letter (requiring it keeps "retrain" from becoming "train" and prefixed opposites apart) or
    change a word's length by two. A word that extends the card's word ("router" for "route")
    or takes another ending of its stem ("forwarded", "forwards") is a different word, not a
    slip; one cut short ("succes") is a slip."""
    return (
        candidate[0] == word[0]
        and abs(len(candidate) - len(word)) <= 1
        and not word.startswith(candidate)
        and not _other_ending(word, candidate)
    )


_ENDINGS = frozenset(
    {
        "e",
        "s",
        "es",
        "ed",
        "ing",
        "y",
        "ly",
        "er",
        "ers",
        "ion",
        "ions",
        "ation",
        "ations",
        "ment",
        "ments",
        "ity",
        "ive",
    }
)


def _other_ending(a: str, b: str) -> bool:
    """Whether `a` and `b` are one stem with two different endings ("bursty", "bursts")."""
    shared = 0
    while shared < min(len(a), len(b)) and a[shared] == b[shared]:
        shared += 1
    return any(
        a[cut:] in _ENDINGS and b[cut:] in _ENDINGS for cut in range(shared, MIN_LENGTH - 1, -1)
    )
