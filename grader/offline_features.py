"""Features the offline grader scores an answer with, computed for many answers at once.

Semantic similarity (answer vs reference, reference + footnote, and question), rubric key-point
coverage (each point vs the answer and its sentences, by embedding and by word overlap),
negation and antonym cues that signal a contradiction, and length / question-copy sanity.

Learner text is data: sentences that address the grader (instructions, fake system messages,
self-assigned scores, closing delimiters) are removed before anything is measured, so they can
neither earn nor cost credit (`grader.answer_text`). Words are compared by stem
(`grader.offline_words`); true/false and numeric references by the answer's truth value or
number (`grader.offline_polarity`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from grader.answer_text import CLAUSE_BREAK, normalise, strip_meta
from grader.offline_polarity import RETRACTION, polarity
from grader.offline_words import (
    ANTONYM_SURFACE,
    ANTONYMS,
    NEGATION_WORDS,
    PREFIXED_OPPOSITE,
    STOPWORDS,
    WORD,
    after_negation,
    content_stems,
    has_negation,
    negation_stems,
    stem,
    text_facts,
)
from grader.rubric import list_items, plain
from grader.spelling import Respeller, words_of

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

_SPLIT_SENTENCES = re.compile(r"(?<=[.!?;])\s+|\n+|\s+-\s+|\s*•\s*")
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
"""A key point no part of the answer matches this closely (cosine), sharing no word with it
either, is not covered, whatever the model says: single-word points are outside the training
data and the model's probability for them sits mid-range."""
_SHORT_ITEM_STEMS = 3
"""Key points of at most this many content words are list items ("Test models"), whose words an
answer naming a sibling item can borrow; longer points are claims that share words freely."""
_UNIVERSAL = frozenset({"all", "every", "everything", "each", "whole", "entire", "entirely"})


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
    """The answer takes itself back ("Actually no, it does not."): see `RETRACTION`."""
    polarity: str | None = None
    """For a true/false or yes/no reference: "same" or "flipped" when the answer opens with one;
    for a reference that is one number: "same" when the answer gives only that number, "flipped"
    when it gives another."""
    respelled: list[str] = field(default_factory=list)
    """Card words the answer misspelled, in the card's spelling (never the learner's)."""


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


def _surface(stem_: str, text: str) -> str:
    """The first word in `text` with stem `stem_` (for messages)."""
    return next((w for w in WORD.findall(text.lower()) if stem(w) == stem_), stem_)


def respellable_words(card: CardText) -> frozenset[str]:
    """The card's words an answer's misspellings are matched to: never a negation, a stopword
    or a word of an antonym pair, so respelling cannot create or hide a contradiction (another
    form of its stem, "automation" beside "automated", can be: slips keep the first letter)."""
    words = words_of((card.question, card.reference, card.footnote, *card.points))
    never = STOPWORDS | NEGATION_WORDS
    return frozenset(w for w in words if w not in never and w not in ANTONYM_SURFACE)


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
        if text_facts(point)[3] != neg_answer
        and (cover >= POINT_MIN_COVER or (own_words > 0 and cover >= best))
        and (
            _says_what_the_negation_governs(point, detail.answer)
            if not neg_answer
            else (
                has_negation(chunk)  # the part of the answer closest to the point
                and _negated_in_a_clause_about(point, detail.answer)
            )
        )
    ]
    return max(candidates)[1] if candidates else None


def _says_what_the_negation_governs(point: str, answer: str) -> bool:
    """Whether the answer says a word that a negation of the point governs (the words after it
    in its clause): "anomalies" names the point "Sudden anomalies or shifts in data not seen
    during training" but says nothing of "seen during training", so it drops no negation;
    "good monitoring" for "They lack monitoring" does."""
    governed: set[str] = set()
    for clause in CLAUSE_BREAK.split(point)[::2]:
        governed |= set(content_stems(after_negation(clause) or ""))
    governed -= negation_stems()
    return not governed or not governed.isdisjoint(text_facts(answer)[1])


def _negated_in_a_clause_about(point: str, answer: str) -> bool:
    """Whether a negated clause of the answer holds half the point's words or more: "updated
    will never degrade" is not about "The model must be deployed"."""
    words = text_facts(point)[1] - negation_stems()
    if not words:
        return True
    for sentence in re.split(r"(?<=[.!?;])\s+|\n+", answer):
        for clause in CLAUSE_BREAK.split(sentence)[::2]:
            _, stems, _, negated = text_facts(clause)
            if negated and len(words & stems) * 2 >= len(words):
                return True
    return False


def entailed_points(points: Sequence[str]) -> dict[int, int]:
    """Point k -> the point u that entails it: u speaks of everything ("Everything is manual")
    and k has every other word of u ("Train manually"). An answer that hits u hits k."""
    stems = [frozenset(content_stems(point)) for point in points]
    out: dict[int, int] = {}
    for u, point in enumerate(points):
        if _UNIVERSAL.isdisjoint(WORD.findall(point.lower())):
            continue
        rest = stems[u] - {stem(word) for word in _UNIVERSAL}
        negated = has_negation(point)
        held = [
            k
            for k in range(len(points))
            if k != u
            and rest
            and rest <= stems[k]
            and len(stems[k]) <= _SHORT_ITEM_STEMS
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
    short = [len(stems) <= _SHORT_ITEM_STEMS for stems in point_stems]
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
    """Clauses, each negated one followed by a list of two or more bare items (four words or
    fewer each, not opening with "but") joined with them, since its negation covers them: ["has
    no data pipelines", "trained models", "or logs"] is one clause. One short clause after a
    negated one is a claim of its own: ["No MLOps", "everything manual"] stays two, as does
    ["no real mlops here", "but data pipelines", ...]."""
    out: list[str] = []
    i = 0
    while i < len(clauses):
        clause = clauses[i]
        end = i + 1
        if has_negation(clause):
            while end < len(clauses) and _bare_item(clauses[end]):
                end += 1
        if end - i - 1 >= 2:
            out.append(", ".join(clauses[i:end]))
        else:
            out.append(clause)
            end = i + 1
        i = end
    return out


def _bare_item(clause: str) -> bool:
    words = clause.split()
    return (
        0 < len(words) <= 4
        and words[0].lower() not in ("but", "yet", "however", "though")
        and not has_negation(clause)
    )


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
            _, stems, _, negated = text_facts(clause)
            if negated != neg_reference and plain_reference <= stems - negation_stems():
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

    answer_stem_count, answer_set, length_answer, neg_answer = text_facts(answer)
    _, reference_set, length_reference, neg_reference = text_facts(card.reference)
    question_set = text_facts(card.question)[1]
    lexical: list[float] = []
    own_words: list[float] = []
    point_stems = [text_facts(point)[1] for point in card.points]
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
    detail.reproduces_reference = (
        bool(answer_set) and answer_set == reference_set and neg_answer == neg_reference
    )
    detail.polarity = polarity(card.reference, answer, card.question)
    detail.copies_question = (  # a true/false answer may restate the question: it says "true"
        bool(answer_set)
        and answer_set <= question_set
        and not (answer_set & reference_set)
        and detail.polarity is None
    )
    detail.retracted = RETRACTION.search(answer) is not None
    if detail.retracted:
        detail.contradictions.append("Your answer takes back what it says.")

    neg_mismatch = float(neg_answer != neg_reference)
    says_it_otherwise = not neg_answer and not _NEGATIVE_SENSE.isdisjoint(
        WORD.findall(answer.lower())
    )
    if neg_mismatch and not says_it_otherwise:
        negated = _negated_point(card, detail, neg_answer)
        if negated is not None:
            detail.contradictions.append(
                f"Your answer {'negates' if neg_answer else 'drops the negation in'} "
                f"the point: {negated}"
            )
    plain_answer = answer_set - negation_stems()
    plain_reference = reference_set - negation_stems()
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
    if len(card.points) == 1 and any(
        plain_reference - {meant} <= answer_set | {said}
        and (
            PREFIXED_OPPOSITE.get(said) == meant
            or PREFIXED_OPPOSITE.get(meant) == said
            or neg_answer == neg_reference
        )
        for said, meant in flips
    ):
        # The reference's own words with one swapped for its opposite: "too accurate" for
        # "suddenly becomes inaccurate", "it removes the labels" for "Add labels". A negation
        # as well ("does not remove the labels") says it twice, unless the opposite is the
        # word with a negating prefix.
        negation_flip = 1.0
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
