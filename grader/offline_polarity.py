"""Answers judged by their truth value or their number, whatever their wording.

A true/false or yes/no reference is answered by the answer's own "yes" or "no" (a synonym, a
"not", the question's statement restated or denied); a numeric reference by the number the
answer gives. An answer that hedges ("4 or 7", "false or true") or takes itself back ("No wait,
TRUE.") says nothing for sure.
"""

from __future__ import annotations

import re

from grader.offline_words import (
    NEGATION,
    STOPWORDS,
    WORD,
    has_negation,
    negation_stems,
    text_facts,
)

_POLAR = {"true": "false", "false": "true", "yes": "no", "no": "yes"}
_SAYS = {
    "true": {"true", "yes", "yep", "correct", "right"},
    "false": {"false", "no", "nope", "wrong", "incorrect", "untrue"},
    "yes": {"yes", "yep", "true", "correct", "right"},
    "no": {"no", "nope", "false", "wrong", "incorrect"},
}
"""What a one-word answer means when the reference is one of `_POLAR`: "nope" is FALSE."""
_FIRST_WORD_ALONE = re.compile(r"\s*(\w+)\s*(?:[,.;:!]|$)")


_NUMBER = re.compile(r"(?<![\w.,-])-?\d+(?:,\d{3})*(?:[.,]\d+)?(?![\w-])")
"""A number standing alone: not the 4 of "GPT-4" or "H2O"; "1,000" is a thousand."""
_NUMERIC_REFERENCE = re.compile(
    r"^\s*(?P<number>-?\d+(?:,\d{3})*(?:[.,]\d+)?)\s*(?:%|[A-Za-z]+)?\s*\.?\s*$"
)
_COUNTING = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen"
_COUNTING += " fifteen sixteen seventeen eighteen nineteen twenty"
_NUMBER_WORDS = {
    word: value
    for value, word in enumerate(_COUNTING.split())
    if word != "one"  # "one per head", "the one that": rarely a count
} | {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}


_A_NUMBER = r"(?:\d+(?:[.,]\d+)?|" + "|".join(_NUMBER_WORDS) + ")"
_HEDGE = re.compile(rf"\b{_A_NUMBER}\s+or\s+{_A_NUMBER}\b", re.IGNORECASE)
"""Two numbers offered as alternatives: "4 or 7"."""


def _number_value(text: str) -> float:
    if re.fullmatch(r"-?\d+(?:,\d{3})+", text):  # thousands separators
        return float(text.replace(",", ""))
    return float(text.replace(",", "."))


_FRACTION = re.compile(r"(?<![\w.,/-])(-?\d+)\s*/\s*(\d+)(?![\w/])")
_SPACED_THOUSANDS = re.compile(r"(?<![\w.,])(\d{1,3})((?:[ \u00a0\u202f]\d{3})+)(?![\w.,])")


def _plain_numbers(text: str) -> str:
    """`text` with numbers in one spelling: a Unicode minus as "-", "1 000" as "1000", a
    fraction "1/2" as "0.5"."""
    text = text.replace("\u2212", "-")
    text = _SPACED_THOUSANDS.sub(lambda m: m.group(1) + re.sub(r"\D", "", m.group(2)), text)
    return _FRACTION.sub(
        lambda m: str(int(m.group(1)) / int(m.group(2))) if int(m.group(2)) else m.group(0), text
    )


def _matches(given: float, expected: float, decimals: int) -> bool:
    """The same number, or a more precise one that rounds to it ("3.14159" for "3.14")."""
    return given == expected or (decimals > 0 and round(given, decimals) == expected)


def _numeric(reference: str, answer: str) -> str | None:
    """For a reference that is one number (with at most a unit): "same" when the answer gives
    that number and no other, "flipped" when it gives numbers but never that one or hedges ("4
    or 7"); None (left to the model) when it gives that number among others ("4, because 2 + 2
    = 4"). Numbers are digits, or words from two to twenty and the tens."""
    match = _NUMERIC_REFERENCE.match(_plain_numbers(reference))
    if match is None:
        return None
    answer = _plain_numbers(answer)
    given = {_number_value(n) for n in _NUMBER.findall(answer)}
    given |= {float(_NUMBER_WORDS[w]) for w in WORD.findall(answer.lower()) if w in _NUMBER_WORDS}
    if not given:
        return None
    number = match.group("number")
    expected = _number_value(number)
    decimals = len(re.split(r"[.,]", number)[1]) if re.search(r"[.,]\d+$", number) else 0
    hits = {g for g in given if _matches(g, expected, decimals)}
    if hits == given:
        return "same"
    if not hits or _HEDGE.search(answer):
        return "flipped"
    return None


RETRACTION = re.compile(
    r"\b(?:no,?\s+wait\b(?=\s*[,.;:!])|actually,?\s+no\b(?=\s*[,.;!])|scratch\s+that|"
    r"i\s+take\s+(?:it|that)\s+back|the\s+opposite\s+is\s+true|i\s+mean\s+the\s+opposite)\b",
    re.IGNORECASE,
)
"""An answer that takes itself back ("... Actually no, it does not."; "FALSE. No wait, TRUE.")
says nothing for sure: capped like a contradiction, and a true/false one scores 0."""
_POLAR_HEDGE = re.compile(r"\b(?:true|false|yes|no)\s+or\s+(?:true|false|yes|no)\b", re.I)
_PLAIN_NO = re.compile(
    r"\s*(?:(?:of\s+course|definitely|certainly|absolutely|surely)\s+)?not"
    r"(?:\s+(?:really|at\s+all))?\s*(?:[,.;:!]|$)",
    re.IGNORECASE,
)
"""A "no" said with "not": "Of course not", "Not really", "Definitely not."."""


def polarity(reference: str, answer: str, question: str = "") -> str | None:
    numeric = _numeric(reference, answer)
    if numeric is not None:
        return numeric
    expected = WORD.findall(reference.lower())
    given = WORD.findall(answer.lower())
    if len(expected) != 1 or expected[0] not in _POLAR or not given:
        return None
    if _POLAR_HEDGE.search(answer) or RETRACTION.search(answer):  # "false or true"
        return "flipped"
    opens_with_not = given[0] == "not" and given[1:2] not in (["false"], ["wrong"], ["incorrect"])
    restated = _restates_the_question(answer, question)
    if restated is not None or _PLAIN_NO.match(answer) or opens_with_not:
        says_no = restated is not True
        return "same" if says_no == (expected[0] in ("false", "no")) else "flipped"
    first = _polar_word(given[0])
    if first == expected[0]:
        return "same"
    if first == _POLAR[expected[0]]:
        return "flipped"
    # a synonym counts only standing alone ("nope", "no, it is not"): "no idea" is no answer
    alone = _FIRST_WORD_ALONE.match(answer.lower())
    if alone is None:
        return None
    if alone.group(1) in _SAYS[expected[0]]:
        return "same"
    return "flipped" if alone.group(1) in _SAYS[_POLAR[expected[0]]] else None


def _polar_word(word: str) -> str:
    """`word`, or "true" / "false" when it is one slip away from it: two letters swapped
    ("fasle", "ture") or one dropped or doubled ("fals", "truee"); never another letter, so
    "tree" stays a tree. The respeller leaves both alone, as one side of an antonym pair."""
    from rapidfuzz.distance import OSA

    for polar in ("true", "false"):
        if word[:1] != polar[0] or OSA.distance(word, polar) != 1:
            continue
        if sorted(word) == sorted(polar) or abs(len(word) - len(polar)) == 1:
            return polar
    return word


_POLAR_STEMS = frozenset({"true", "fals", "yes", "no", "right", "wrong", "correct", "incorrect"})


def _restates_the_question(answer: str, question: str) -> bool | None:
    """For a true/false question: True when the answer restates its statement ("it is part of
    MLOps" for "True or false: monitoring is part of MLOps"), False when it restates it negated
    ("It is not only about technology" for "... MLOps is only about technology"), else None.
    A restatement uses only the statement's words: half of them or more to affirm it, any to
    deny it."""
    # less stopwords a contraction leaves among the stems: the "it" of "it's not enough"
    words = text_facts(answer)[1] - negation_stems() - _POLAR_STEMS - STOPWORDS
    asked = text_facts(question)[1] - _POLAR_STEMS
    if not words or not words <= asked or has_negation(question):
        return None
    if NEGATION.search(answer.lower()) is not None:  # "not only" denies "only" here
        return False
    return True if len(words) * 2 >= len(asked) else None
