"""Features the offline grader scores an answer with, computed for many answers at once.

Semantic similarity (answer vs reference, reference + footnote, and question), rubric key-point
coverage (each point vs the answer and its sentences, by embedding and by word overlap),
negation and antonym cues that signal a contradiction, and length / question-copy sanity.

Learner text is data: sentences that address the grader (instructions, fake system messages,
self-assigned scores, closing delimiters) are removed before anything is measured, so they can
neither earn nor cost credit.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from grader.answer_text import CLAUSE_BREAK, normalise, strip_meta
from grader.rubric import list_items, plain
from grader.spelling import BARE_NEGATIONS, Respeller, words_of

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Matrix = npt.NDArray[np.float32]
    Features = npt.NDArray[np.float64]

Encode = Callable[[Sequence[str]], "Matrix"]

FEATURE_NAMES: tuple[str, ...] = (
    "sim_ref",
    "sim_question",
    "sim_gain",
    "cov_mean",
    "cov_min",
    "cov_max",
    "lex_recall",
    "lex_point_mean",
    "lex_precision",
    "question_only",
    "log_len_ratio",
    "very_short",
    "neg_mismatch",
    "neg_mismatch_x_sim",
    "antonym_flip",
    "antonym_flip_x_sim",
    "negation_flip",
)

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_SPLIT_SENTENCES = re.compile(r"(?<=[.!?;])\s+|\n+|\s+-\s+|\s*•\s*")
_NEGATION = re.compile(
    r"\b(?:not|no|never|none|nothing|nobody|neither|nor|cannot|without|"
    r"isn't|aren't|wasn't|weren't|don't|doesn't|didn't|won't|can't|couldn't|shouldn't|"
    r"wouldn't|hasn't|haven't|hadn't|mustn't|unable|lack|lacks|"
    + "|".join(sorted(BARE_NEGATIONS))
    + r")\b|n't\b"
)
"""Negation, apostrophes optional: answers typed in a terminal often write "dont" and "isnt"."""
_NEGATIVE_SENSE = frozenset(
    [
        "bad",
        "poor",
        "poorly",
        "weak",
        "missing",
        "absent",
        "insufficient",
        "inadequate",
        "differ",
        "differs",
        "differed",
        "different",
        "unseen",
        "fail",
        "fails",
        "failed",
        "failing",
        "broken",
        "unreliable",
        "lacking",
        "unknown",
        "unclear",
        "misaligned",
        "unaligned",
        "outdated",
        "stale",
    ]
)
"""Words that carry a negation's sense without one: "bad pipelines" does not drop the negation
of "They lack robust pipelines" (no message; the feature `neg_mismatch` is unchanged)."""
_NOT_ONLY = re.compile(r"\bnot\s+(?:just|only|merely|simply|solely)\b")
"""Not a negation: "systems, not just models" affirms the models and adds the systems."""
_NEGATION_WORDS = frozenset(
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
LENGTH_RATIO_CAP = 2.6
"""Bound on the log length ratio of answer to reference: the training answers span -3.7 to 2.6,
and beyond that the fitted weight would extrapolate ("banana " repeated 300 times scored 0.96
for "Continuous integration" before repeated words stopped counting and this bound came)."""
NEGATION_FLIP_RECALL = 0.5
"""A negation flip: polarity differs, and either every answer word is a reference word and at
least this share of the reference's words recur, or every reference word recurs ("releasing a
model is the end of the project" for "Releasing a model is NOT the end"). Measured on the
training data: 27% of the first kind and 16% of the second (37 answers; 85% where the polarity
agrees) were graded correct, against 46% overall; looser overlap rules were no signal at all."""
_MAX_CHUNKS = 12
POINT_MIN_COVER = 0.6
_LIST_ITEM_WORDS = 3
"""Key points of at most this many content words are list items ("Test models"), whose words an
answer naming a sibling item can borrow; longer points are claims that share words freely."""
_UNIVERSAL = frozenset({"all", "every", "everything", "each", "whole", "entire", "entirely"})
"""A key point no part of the answer matches this closely (cosine), sharing no word with it
either, is not covered, whatever the model says: single-word points are outside the training
data and the model's probability for them sits mid-range."""

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
def _negation_stems() -> frozenset[str]:
    """The negation words as they appear among stems ("nobody" stems to "nobodi")."""
    return _NEGATION_WORDS | frozenset(stem(word) for word in _NEGATION_WORDS)


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
_ANTONYM_SURFACE = frozenset(word for pair in ANTONYM_WORDS for word in pair)
_PREFIXED_OPPOSITE = {
    a: b for a, b in ANTONYMS if b.endswith(a) and b[: len(b) - len(a)] in ("in", "un", "dis", "a")
}
"""Antonyms that are their word with a negating prefix ("accurate" / "inaccurate"): saying the
one where the reference says the other, in the reference's own words, is a negation flip."""


@dataclass(frozen=True)
class CardText:
    """The parts of a card the features compare an answer with."""

    question: str
    reference: str
    footnote: str
    points: tuple[str, ...]
    listed: bool = False
    """The reference is a bulleted list, and its items are the points."""


@dataclass
class AnswerDetail:
    """Per-answer intermediate results the grader turns into key points and feedback."""

    answer: str
    """The answer as the learner wrote it, less sentences addressed to the grader."""
    removed_meta: bool
    """True when sentences addressed to the grader were removed."""
    point_cover: list[float] = field(default_factory=list)
    """Per rubric point: best cosine between the point and an answer chunk."""
    point_lexical: list[float] = field(default_factory=list)
    """Per rubric point: share of the point's content words found in the answer."""
    point_own_words: list[float] = field(default_factory=list)
    """Per rubric point: share of its own content words (not shared by every point, such as the
    "lots" of "Lots of data" / "Lots of models") found in the answer."""
    point_chunk: list[str] = field(default_factory=list)
    """Per rubric point: the answer chunk that matched it best (as the learner wrote it)."""
    contradictions: list[str] = field(default_factory=list)
    """Human-readable contradiction cues."""
    copies_question: bool = False
    reproduces_reference: bool = False
    """The answer's content words are exactly the reference's, with the same polarity."""
    retracted: bool = False
    """The answer takes itself back ("Actually no, it does not."): see `_RETRACTION`."""
    polarity: str | None = None
    """For a true/false or yes/no reference: "same" or "flipped" when the answer opens with one;
    for a reference that is one number: "same" when the answer gives only that number, "flipped"
    when it gives another."""
    respelled: list[str] = field(default_factory=list)
    """Card words the answer misspelled, in the card's spelling (never the learner's)."""


def stems_without_negation(text: str) -> frozenset[str]:
    """The content stems of `text` less its negations: "no monitoring" and "They lack
    monitoring" say the same about monitoring."""
    return frozenset(content_stems(text)) - _negation_stems()


def content_stems(text: str) -> list[str]:
    return [stem(w) for w in _WORD.findall(text.lower()) if w not in STOPWORDS]


@functools.lru_cache(maxsize=1 << 14)
def _text_facts(text: str) -> tuple[int, frozenset[str], int, bool]:
    """Content-stem count, content-stem set, length in words and negation of `text`, memoised: a
    batch measures each card text once per answer and each answer once per rubric point. A long
    text that mostly repeats itself (20 words or more, under a tenth of them distinct: "banana
    banana ...") is as long as its distinct words; no training answer is (routing tables and
    sums of probabilities repeat a lot, but not that much)."""
    stems = content_stems(text)
    words = _WORD.findall(text.lower())
    distinct = len(set(words))
    length = distinct if len(words) >= 20 and distinct < 0.1 * len(words) else len(words)
    return len(stems), frozenset(stems), length, has_negation(text)


def has_negation(text: str) -> bool:
    return _NEGATION.search(_NOT_ONLY.sub(" ", text.lower())) is not None


def card_text(question: str, answer: str, footnote: str | None, points: Sequence[str]) -> CardText:
    items = list_items(answer)
    listed = bool(items) and tuple(points) == tuple(items)
    reference = normalise("; ".join(items) if items else plain(answer))
    return CardText(
        question=normalise(plain(question)),
        reference=reference,
        footnote=normalise(plain(footnote or "")),
        points=tuple(normalise(point) for point in points) or (reference,),
        listed=listed,
    )


def answer_chunks(answer: str) -> list[str]:
    """The answer, then its sentences / list items when it has several (deduplicated, capped).

    Clauses were tried as chunks too: they cost a third of batch throughput and moved the
    cross-validated figures by less than 0.01.
    """
    sentences = [s.strip(" -*.;") for s in _SPLIT_SENTENCES.split(answer)]
    sentences = [s for s in sentences if s]
    chunks = [answer, *sentences] if len(sentences) > 1 else [answer]
    return list(dict.fromkeys(chunks))[:_MAX_CHUNKS]


def _antonym_flips(reference: frozenset[str], answer: frozenset[str]) -> list[tuple[str, str]]:
    flips: list[tuple[str, str]] = []
    for a, b in ANTONYMS:
        for said, meant in ((a, b), (b, a)):
            if (
                said in answer
                and meant in reference
                and said not in reference
                and meant not in answer
            ):
                flips.append((said, meant))
    return flips


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
    given |= {float(_NUMBER_WORDS[w]) for w in _WORD.findall(answer.lower()) if w in _NUMBER_WORDS}
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


_RETRACTION = re.compile(
    r"\b(?:no,?\s+wait|actually,?\s+no\b(?=\s*[,.;!])|scratch\s+that|"
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


def _polarity(reference: str, answer: str, question: str = "") -> str | None:
    numeric = _numeric(reference, answer)
    if numeric is not None:
        return numeric
    expected = _WORD.findall(reference.lower())
    given = _WORD.findall(answer.lower())
    if len(expected) != 1 or expected[0] not in _POLAR or not given:
        return None
    if _POLAR_HEDGE.search(answer) or _RETRACTION.search(answer):  # "false or true"
        return "flipped"
    opens_with_not = given[0] == "not" and given[1:2] not in (["false"], ["wrong"], ["incorrect"])
    restated = _restates_the_question(answer, question)
    if restated is not None or _PLAIN_NO.match(answer) or opens_with_not:
        says_no = restated is not True
        return "same" if says_no == (expected[0] in ("false", "no")) else "flipped"
    if given[0] == expected[0]:
        return "same"
    if given[0] == _POLAR[expected[0]]:
        return "flipped"
    # a synonym counts only standing alone ("nope", "no, it is not"): "no idea" is no answer
    alone = _FIRST_WORD_ALONE.match(answer.lower())
    if alone is None:
        return None
    if alone.group(1) in _SAYS[expected[0]]:
        return "same"
    return "flipped" if alone.group(1) in _SAYS[_POLAR[expected[0]]] else None


_POLAR_STEMS = frozenset({"true", "fals", "yes", "no", "right", "wrong", "correct", "incorrect"})


def _restates_the_question(answer: str, question: str) -> bool | None:
    """For a true/false question: True when the answer restates its statement ("it is part of
    MLOps" for "True or false: monitoring is part of MLOps"), False when it restates it negated
    ("It is not only about technology" for "... MLOps is only about technology"), else None.
    A restatement uses only the statement's words: half of them or more to affirm it, any to
    deny it."""
    words = _text_facts(answer)[1] - _negation_stems() - _POLAR_STEMS
    asked = _text_facts(question)[1] - _POLAR_STEMS
    if not words or not words <= asked or has_negation(question):
        return None
    if _NEGATION.search(answer.lower()) is not None:  # "not only" denies "only" here
        return False
    return True if len(words) * 2 >= len(asked) else None


def _surface(stem_: str, text: str) -> str:
    """The first word in `text` with stem `stem_` (for messages)."""
    return next((w for w in _WORD.findall(text.lower()) if stem(w) == stem_), stem_)


def respellable_words(card: CardText) -> frozenset[str]:
    """The card's words an answer's misspellings are matched to: never a negation, a stopword
    or a word of an antonym pair, so respelling cannot create or hide a contradiction (another
    form of its stem, "automation" beside "automated", can be: slips keep the first letter)."""
    words = words_of((card.question, card.reference, card.footnote, *card.points))
    never = STOPWORDS | _NEGATION_WORDS
    return frozenset(w for w in words if w not in never and w not in _ANTONYM_SURFACE)


def _chunks(
    respeller: Respeller, answer: str, vocabulary: frozenset[str]
) -> tuple[list[str], list[str], list[str]]:
    """The answer's chunks as written and as graded (misspelled card words respelled), and the
    card words respelled, each once."""
    shown = answer_chunks(answer) if answer else []
    if not shown:
        return [], [], []
    whole, restored = respeller.respell_noting(shown[0], vocabulary)  # the whole answer
    graded = [whole, *(respeller.respell(chunk, vocabulary) for chunk in shown[1:])]
    return shown, graded, list(dict.fromkeys(restored))


def featurize(
    encode: Encode, respeller: Respeller, items: Sequence[tuple[CardText, str]]
) -> tuple[Features, list[AnswerDetail]]:
    """Feature matrix (len(items), len(FEATURE_NAMES)) and per-answer details, batched: every text
    is encoded in one call. Answers are measured with misspelled card words respelled."""
    import numpy as np

    cleaned = [strip_meta(answer) for _, answer in items]
    vocabularies: dict[CardText, frozenset[str]] = {}
    shown_chunks: list[list[str]] = []
    graded_chunks: list[list[str]] = []
    respelled: list[list[str]] = []
    for (card, _), (answer, _) in zip(items, cleaned, strict=True):
        if card not in vocabularies:
            vocabularies[card] = respellable_words(card)
        shown, graded, restored = _chunks(respeller, answer, vocabularies[card])
        shown_chunks.append(shown)
        graded_chunks.append(graded)
        respelled.append(restored)
    texts: list[str] = []
    for (card, _), chunks in zip(items, graded_chunks, strict=True):
        texts.append(card.question)
        texts.append(card.reference)
        if card.footnote:
            texts.append(card.reference + " " + card.footnote)
        texts.extend(card.points)
        texts.extend(chunks)
    unique = list(dict.fromkeys(texts))
    index = {text: i for i, text in enumerate(unique)}
    vectors = encode(unique) if unique else np.zeros((0, 384), dtype=np.float32)

    features = np.zeros((len(items), len(FEATURE_NAMES)), dtype=np.float64)
    details: list[AnswerDetail] = []
    for row, ((card, _), (answer, removed), shown, graded, restored) in enumerate(
        zip(items, cleaned, shown_chunks, graded_chunks, respelled, strict=True)
    ):
        detail = AnswerDetail(answer=answer, removed_meta=removed, respelled=restored)
        details.append(detail)
        if not answer:
            detail.point_cover = [0.0] * len(card.points)
            detail.point_lexical = [0.0] * len(card.points)
            detail.point_own_words = [0.0] * len(card.points)
            detail.point_chunk = [""] * len(card.points)
            features[row] = _empty_features()
            continue
        features[row] = _features_for(card, graded, shown, vectors, index, detail)
    return features, details


def _negated_point(card: CardText, detail: AnswerDetail, neg_answer: bool) -> str | None:
    """The key point the answer addresses with the opposite polarity, best match first; None
    when the negation sits in a point the answer does not address (a missed point, not a
    contradiction). Addressed: close in meaning (cosine >= POINT_MIN_COVER), or the answer's
    closest point sharing a word of its own with it ("model" alone does not make "the model
    suddenly becomes inaccurate" address "No one knows which model is in production")."""
    best = max(detail.point_cover, default=0.0)
    candidates = [
        (cover, point)
        for point, cover, own_words, chunk in zip(
            card.points, detail.point_cover, detail.point_own_words, detail.point_chunk, strict=True
        )
        if _text_facts(point)[3] != neg_answer
        and (cover >= POINT_MIN_COVER or (own_words > 0 and cover >= best))
        and (
            not neg_answer
            or (
                has_negation(chunk)  # the part of the answer closest to the point
                and _negated_in_a_clause_about(point, detail.answer)
            )
        )
    ]
    return max(candidates)[1] if candidates else None


def _negated_in_a_clause_about(point: str, answer: str) -> bool:
    """Whether a negated clause of the answer holds half the point's words or more: "updated
    will never degrade" is not about "The model must be deployed"."""
    words = _text_facts(point)[1] - _negation_stems()
    if not words:
        return True
    for sentence in re.split(r"(?<=[.!?;])\s+|\n+", answer):
        for clause in CLAUSE_BREAK.split(sentence)[::2]:
            _, stems, _, negated = _text_facts(clause)
            if negated and len(words & stems) * 2 >= len(words):
                return True
    return False


def entailed_points(points: Sequence[str]) -> dict[int, int]:
    """Point k -> the point u that entails it: u speaks of everything ("Everything is manual")
    and k has every other word of u ("Train manually"). An answer that hits u hits k."""
    stems = [frozenset(content_stems(point)) for point in points]
    out: dict[int, int] = {}
    for u, point in enumerate(points):
        if _UNIVERSAL.isdisjoint(_WORD.findall(point.lower())):
            continue
        rest = stems[u] - {stem(word) for word in _UNIVERSAL}
        negated = has_negation(point)
        held = [
            k
            for k in range(len(points))
            if k != u
            and rest
            and rest <= stems[k]
            and len(stems[k]) <= _LIST_ITEM_WORDS
            and has_negation(points[k]) == negated
        ]
        for k in held if len(held) >= 2 else []:  # an enumeration: Train/Test/Deploy manually
            out.setdefault(k, u)
    return out


def _borrowed_words(
    point_stems: Sequence[frozenset[str]], answer_set: frozenset[str]
) -> list[frozenset[str]]:
    """Per short list item that has a word of its own but is not named by it, the words the answer
    spends on sibling points instead: the words of each sibling the answer names by a word only
    that sibling has. "models" in "get data and train models" belongs to Train models (named by
    "train"), so it does not cover Test models. A point with no word of its own ("Data
    understanding" beside "Business understanding" and "Data preparation") borrows nothing, and
    a point about everything ("Everything is manual") lends nothing: it speaks of each point
    that shares its word ("Test manually"). A universal word in the answer changes nothing:
    "get all the data and train models" names two steps, as without "all"."""
    if len(point_stems) < 2:
        return [frozenset()] * len(point_stems)
    universal = frozenset(stem(w) for w in _UNIVERSAL)
    distinct = [
        stems - frozenset().union(*(s for j, s in enumerate(point_stems) if j != k))
        for k, stems in enumerate(point_stems)
    ]
    short = [len(stems) <= _LIST_ITEM_WORDS for stems in point_stems]
    named = [
        short[k] and bool(words & answer_set) and not (point_stems[k] & universal)
        for k, words in enumerate(distinct)
    ]
    return [
        frozenset().union(*(s for j, s in enumerate(point_stems) if j != k and named[j]))
        if short[k] and distinct[k] and not named[k]
        else frozenset()
        for k in range(len(point_stems))
    ]


_CONDITION = re.compile(r"^\s*(?:if|unless|when)\b|\bwithout\b", re.IGNORECASE)


def _with_their_items(clauses: Sequence[str]) -> list[str]:
    """Clauses, each negated one followed by the bare list items after it (four words or fewer
    each, not opening with "but") joined on, since its negation covers them: ["has no data
    pipelines", "trained models", "or logs"] is one clause; ["no real mlops here", "but data
    pipelines"] stays two."""
    out: list[str] = []
    for clause in clauses:
        words = clause.split()
        if (
            out
            and len(words) <= 4
            and words[0].lower() not in ("but", "yet", "however", "though")
            and not has_negation(clause)
            and has_negation(out[-1])
        ):
            out[-1] = f"{out[-1]}, {clause}"
        else:
            out.append(clause)
    return out


def _flips_in_one_sentence(
    sentences: Sequence[str], plain_reference: frozenset[str], neg_reference: bool
) -> bool:
    """One clause of the answer has every (non-negation) reference word, with the other
    polarity: "releasing a model is the end of the project" for "Releasing a model is NOT the
    end", but not "... detect performance drops. Without it you are flying blind", nor "no real
    mlops, models are treated as files" for "Models treated like files". A clause followed by
    bare list items carries them: in "has no data pipelines, trained models, APIs" the "no" is
    on every item."""
    for sentence in sentences:
        for clause in _with_their_items(CLAUSE_BREAK.split(sentence)[::2]):
            if _CONDITION.search(clause):  # "without X, ..." / "if you don't X" restate X
                continue
            _, stems, _, negated = _text_facts(clause)
            if negated != neg_reference and plain_reference <= stems - _negation_stems():
                return True
    return False


def _empty_features() -> list[float]:
    values = dict.fromkeys(FEATURE_NAMES, 0.0)
    values["log_len_ratio"] = -3.0
    values["very_short"] = 1.0
    return [values[name] for name in FEATURE_NAMES]


def _features_for(
    card: CardText,
    chunks: list[str],
    shown: list[str],
    vectors: Matrix,
    index: dict[str, int],
    detail: AnswerDetail,
) -> list[float]:
    """Features of the answer whose respelled chunks are `chunks` (the whole answer first) and
    whose chunks as written are `shown`."""
    import math

    import numpy as np

    answer = chunks[0]
    answer_vec = vectors[index[answer]]
    chunk_vecs = vectors[[index[c] for c in chunks]]
    sim_ref = float(answer_vec @ vectors[index[card.reference]])
    if card.footnote:
        sim_ref = max(
            sim_ref, float(answer_vec @ vectors[index[card.reference + " " + card.footnote]])
        )
    sim_question = float(answer_vec @ vectors[index[card.question]])

    point_vecs = vectors[[index[p] for p in card.points]]
    cover = point_vecs @ chunk_vecs.T
    best = cover.argmax(axis=1)
    detail.point_cover = [float(v) for v in cover.max(axis=1)]
    detail.point_chunk = [shown[int(i)] for i in best]

    answer_stem_count, answer_set, length_answer, neg_answer = _text_facts(answer)
    _, reference_set, length_reference, neg_reference = _text_facts(card.reference)
    question_set = _text_facts(card.question)[1]
    lexical: list[float] = []
    own_words: list[float] = []
    point_stems = [_text_facts(point)[1] for point in card.points]
    shared = frozenset.intersection(*point_stems) if len(point_stems) > 1 else frozenset()
    borrowed = (
        _borrowed_words(point_stems, answer_set)
        if card.listed
        else [frozenset()] * len(point_stems)
    )
    for k, stems in enumerate(point_stems):
        lexical.append(len(stems & answer_set) / len(stems) if stems else 0.0)
        own = (stems - shared or stems) - borrowed[k]
        own_words.append(len(own & answer_set) / len(own) if own else 0.0)
    detail.point_lexical = lexical
    detail.point_own_words = own_words
    lex_recall = len(reference_set & answer_set) / len(reference_set) if reference_set else 0.0
    lex_precision = (
        len(answer_set & (reference_set | question_set)) / len(answer_set) if answer_set else 0.0
    )
    question_only = (
        len(answer_set & (question_set - reference_set)) / len(answer_set) if answer_set else 0.0
    )
    detail.copies_question = (
        bool(answer_set) and answer_set <= question_set and not (answer_set & reference_set)
    )
    detail.reproduces_reference = (
        bool(answer_set) and answer_set == reference_set and neg_answer == neg_reference
    )
    detail.polarity = _polarity(card.reference, answer, card.question)
    detail.retracted = _RETRACTION.search(answer) is not None
    if detail.retracted:
        detail.contradictions.append("Your answer takes back what it says.")

    neg_mismatch = float(neg_answer != neg_reference)
    says_it_otherwise = not neg_answer and not _NEGATIVE_SENSE.isdisjoint(
        _WORD.findall(answer.lower())
    )
    if neg_mismatch and not says_it_otherwise:
        negated = _negated_point(card, detail, neg_answer)
        if negated is not None:
            detail.contradictions.append(
                f"Your answer {'negates' if neg_answer else 'drops the negation in'} "
                f"the point: {negated}"
            )
    plain_answer = answer_set - _negation_stems()
    plain_reference = reference_set - _negation_stems()
    # With several key points each point's own row judges a flip: against the points joined,
    # "the model suddenly becomes inaccurate, data changes silently" would flip the "No one
    # knows ..." of another point.
    negation_flip = float(
        bool(neg_mismatch and plain_answer and plain_reference)
        and len(card.points) == 1
        and (
            (
                plain_answer <= plain_reference
                and len(plain_answer) / len(plain_reference) >= NEGATION_FLIP_RECALL
            )
            or _flips_in_one_sentence(chunks[1:] or chunks, plain_reference, neg_reference)
        )
    )
    flips = _antonym_flips(reference_set, answer_set)
    if (
        len(card.points) == 1
        and any(
            _PREFIXED_OPPOSITE.get(said) == meant or _PREFIXED_OPPOSITE.get(meant) == said
            for said, meant in flips
        )
        and any(plain_reference - {meant} <= answer_set | {said} for said, meant in flips)
    ):
        negation_flip = 1.0  # "too accurate" for "suddenly becomes inaccurate": a negation
    for said, meant in flips[:2]:
        detail.contradictions.append(
            f"Your answer says '{_surface(said, answer)}' where the reference says "
            f"'{_surface(meant, card.reference)}'."
        )
    flip = float(bool(flips))
    values = {
        "sim_ref": sim_ref,
        "sim_question": sim_question,
        "sim_gain": sim_ref - sim_question,
        "cov_mean": float(np.mean(detail.point_cover)),
        "cov_min": float(np.min(detail.point_cover)),
        "cov_max": float(np.max(detail.point_cover)),
        "lex_recall": lex_recall,
        "lex_point_mean": float(np.mean(lexical)) if lexical else 0.0,
        "lex_precision": lex_precision,
        "question_only": question_only,
        "log_len_ratio": min(
            LENGTH_RATIO_CAP, math.log((length_answer + 1) / (length_reference + 1))
        ),
        "very_short": float(answer_stem_count <= 1),
        "neg_mismatch": neg_mismatch,
        "neg_mismatch_x_sim": neg_mismatch * sim_ref,
        "antonym_flip": flip,
        "antonym_flip_x_sim": flip * sim_ref,
        "negation_flip": negation_flip,
    }
    return [values[name] for name in FEATURE_NAMES]
