"""From features to probabilities: the whole answer and each rubric point, plus contradiction caps.

Shared by the offline grader and by cross-validation, so the figures measure what ships. A rubric
with several key points is scored point by point (each point treated as a reference of its own):
the answer's probability is the lower of the whole-answer probability and the mean over points,
so naming one of three phases cannot pass for naming all three. An answer that repeats the
reference's words with a negation flipped is capped below `partial` (see `negation_flip`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from grader.offline_features import (
    FEATURE_NAMES,
    POINT_MIN_COVER,
    AnswerDetail,
    CardText,
    Encode,
    entailed_points,
    featurize,
)
from grader.offline_words import content_stems
from grader.rubric import LIST_ITEM_WORDS, required_points

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from grader.calibration import Calibration
    from grader.spelling import Respeller

    Features = npt.NDArray[np.float64]

CONTRADICTION_CAP = 0.6
"""A direct contradiction's probability is capped at this fraction of the partial cut point."""


_FLIP = FEATURE_NAMES.index("negation_flip")
_NEG_MISMATCH = FEATURE_NAMES.index("neg_mismatch")
_ANTONYM_FLIP = FEATURE_NAMES.index("antonym_flip")
_LEX_PRECISION = FEATURE_NAMES.index("lex_precision")
_SIM_REF = FEATURE_NAMES.index("sim_ref")
_COV_MAX = FEATURE_NAMES.index("cov_max")


@dataclass
class Scored:
    """One answer's probabilities and details."""

    probability: float
    """Combined probability (before the score map)."""
    point_probabilities: list[float]
    """Per rubric point (one entry, the whole answer's, for a single-point rubric)."""
    detail: AnswerDetail
    contradiction: bool
    required: int = 0
    """Points the question asks for (0: all of them; see `grader.rubric.required_points`)."""


@dataclass
class FeatureSet:
    """Features of each answer against its whole reference, against each rubric point, and
    against each point's alternatives (see `grader.rubric.alternatives`)."""

    whole: Features
    points: Features
    """Rows of per-point and per-alternative features, indexed by `spans` and `alternatives`."""
    spans: list[tuple[int, int]]
    """Answer i's per-point rows (empty for a one-point rubric: the whole answer is the point)."""
    details: list[AnswerDetail]
    alternatives: list[list[tuple[int, int]]] = field(default_factory=list)
    """Answer i, point k: the rows of that point's alternatives (empty when it has none)."""
    alternative_details: list[AnswerDetail] = field(default_factory=list)
    """Per row of `points`: the details of an alternative's row (unused for point rows)."""
    entailments: list[dict[int, int]] = field(default_factory=list)
    """Answer i: point k -> the point that entails it (see `entailed_points`)."""
    required: list[int] = field(default_factory=list)
    """Answer i: how many of its card's points the question asks for."""


def compute_features(
    encode: Encode, respeller: Respeller, items: Sequence[tuple[CardText, str]]
) -> FeatureSet:
    """Whole-answer, per-point and per-alternative features for every item, with one encoder
    call."""
    import numpy as np

    from grader.rubric import alternatives

    expanded: list[tuple[CardText, str]] = list(items)
    spans: list[tuple[int, int]] = []
    alternative_spans: list[list[tuple[int, int]]] = []

    def add(reference: str, question: str, answer: str) -> None:
        expanded.append((CardText(question, reference, "", (reference,)), answer))

    for card, answer in items:
        start = len(expanded) - len(items)
        if len(card.points) > 1:
            for point in card.points:
                add(point, card.question, answer)
        spans.append((start, len(expanded) - len(items)))
        per_point: list[tuple[int, int]] = []
        answer_stems: set[str] | None = None
        for point in card.points:
            first = len(expanded) - len(items)
            for alternative in alternatives(point):
                # Only an alternative whose own words the answer uses: "they lack coffee" shares
                # the lead of "They lack monitoring", and a short text, but names no item.
                answer_stems = answer_stems or set(content_stems(answer))
                if answer_stems & set(content_stems(alternative.item)):
                    add(alternative.text, card.question, answer)
            per_point.append((first, len(expanded) - len(items)))
        alternative_spans.append(per_point)
    features, details = featurize(encode, respeller, expanded)
    n = len(items)
    points = features[n:] if len(expanded) > n else np.zeros((0, len(FEATURE_NAMES)))
    entailments: dict[CardText, dict[int, int]] = {}
    required: dict[CardText, int] = {}
    for card, _ in items:  # once per card, not per answer
        if card not in entailments:
            entailments[card] = entailed_points(card.points)
            required[card] = _required(card)
    return FeatureSet(
        whole=features[:n],
        points=points,
        spans=spans,
        details=details[:n],
        alternatives=alternative_spans,
        alternative_details=details[n:],
        entailments=[entailments[card] for card, _ in items],
        required=[required[card] for card, _ in items],
    )


def _required(card: CardText) -> int:
    """How many points the question asks for, when the points are list items (bullets, or an
    enumeration's short items); a reference of several claims is wanted whole ("Name two
    advantages" over a paragraph of prose: its claims are not the advantages one by one)."""
    items = card.listed or all(len(p.split()) <= LIST_ITEM_WORDS for p in card.points)
    return required_points(card.question, len(card.points)) if items else len(card.points)


def _take_alternatives(
    features: FeatureSet, i: int, probabilities: Features, per_point: list[float]
) -> list[float]:
    """`per_point` with each point raised to its best alternative's probability, and the
    answer's details (cover, word overlap, matching chunk) taken from that alternative. An
    alternative whose polarity differs from the answer's (a negation or an antonym) raises
    nothing."""
    if not features.alternatives:
        return per_point
    detail = features.details[i]
    out = list(per_point)
    for k, (start, end) in enumerate(features.alternatives[i]):
        for row in range(start, end):
            if features.points[row][_NEG_MISMATCH] or features.points[row][_ANTONYM_FLIP]:
                continue  # a short alternative matches "good monitoring" to "lack monitoring"
            p = float(probabilities[row])
            if p <= out[k]:
                continue
            out[k] = p
            chosen = features.alternative_details[row]
            detail.point_cover[k] = max(detail.point_cover[k], chosen.point_cover[0])
            detail.point_lexical[k] = max(detail.point_lexical[k], chosen.point_lexical[0])
            detail.point_own_words[k] = max(detail.point_own_words[k], chosen.point_lexical[0])
            detail.point_chunk[k] = chosen.point_chunk[0]
    return out


def is_contradiction(row: Features) -> bool:
    return bool(row[_FLIP] > 0)


UNRELATED_SIMILARITY = 0.3
"""An answer with no content word of the reference or question, and no closer than this
(cosine) to the reference or any of its points, is about something else: capped below partial
whatever its length (a pasted paragraph on the Amazon rainforest scored 0.81 for "What does CI
stand for?", its length outweighing its content in the linear model)."""


def is_unrelated(row: Features) -> bool:
    return bool(
        row[_LEX_PRECISION] == 0 and max(row[_SIM_REF], row[_COV_MAX]) < UNRELATED_SIMILARITY
    )


def combine(calibration: Calibration, features: FeatureSet) -> list[Scored]:
    """Combined probability per answer."""
    cap = CONTRADICTION_CAP * calibration.partial_cut
    whole = calibration.probability(features.whole)
    points = calibration.probability(features.points) if len(features.points) else features.points
    results: list[Scored] = []
    for i, (start, end) in enumerate(features.spans):
        p_whole = float(whole[i])
        contradiction = is_contradiction(features.whole[i])
        if end > start:
            per_point = [float(p) for p in points[start:end]]
            point_contradiction = [is_contradiction(r) for r in features.points[start:end]]
            per_point = [
                min(p, cap) if contradicted else p
                for p, contradicted in zip(per_point, point_contradiction, strict=True)
            ]
            per_point = _take_alternatives(features, i, points, per_point)
            detail = features.details[i]
            unsupported = [  # a point shares no word of its own with the answer, nor meaning
                cover < POINT_MIN_COVER and own_words == 0.0
                for cover, own_words in zip(detail.point_cover, detail.point_own_words, strict=True)
            ]
            per_point = [
                min(p, cap) if alone else p for p, alone in zip(per_point, unsupported, strict=True)
            ]
            for k, u in (features.entailments[i] if features.entailments else {}).items():
                if per_point[u] > per_point[k]:
                    per_point[k] = per_point[u]
                    detail.point_cover[k] = detail.point_cover[u]
                    detail.point_chunk[k] = detail.point_chunk[u]
            required = features.required[i] if features.required else len(per_point)
            if required < len(per_point):  # "name one reason": the best points answer it
                best = sorted(per_point, reverse=True)[:required]
                probability = max(p_whole, sum(best) / required)
            else:
                probability = min(p_whole, sum(per_point) / len(per_point))
        else:
            required = 1
            per_point = _take_alternatives(features, i, points, [p_whole])
            probability = per_point[0]
        if contradiction or is_unrelated(features.whole[i]) or features.details[i].retracted:
            probability = min(probability, cap)
            per_point = [min(p, cap) for p in per_point]
        results.append(Scored(probability, per_point, features.details[i], contradiction, required))
    return results


def point_credit(score: float) -> float:
    """A key point's credit from its own score: hit 1, partial 0.5, missed 0."""
    from grader.models import verdict_for_score

    return {"correct": 1.0, "partial": 0.5}.get(verdict_for_score(score), 0.0)


def final_score(calibration: Calibration, scored: Scored) -> tuple[float, list[float]]:
    """The answer's score and its points' scores. With several key points the score is at most
    the rubric coverage (hit 1, partial 0.5, missed 0, averaged): probabilities of uncovered
    points sit mid-range, so a mean of them alone would over-credit naming one point of three."""
    import numpy as np

    score = float(calibration.score(np.array([scored.probability]))[0])
    points = [float(v) for v in calibration.score(np.array(scored.point_probabilities))]
    if len(points) > 1:
        wanted = scored.required or len(points)
        credits = sorted((point_credit(p) for p in points), reverse=True)[:wanted]
        score = min(score, sum(credits) / wanted)
    detail = scored.detail
    if detail.polarity == "flipped":
        score, points = 0.0, [0.0] * len(points)
    elif detail.polarity == "same" or detail.reproduces_reference:
        score, points = max(score, 1.0), [max(p, 1.0) for p in points]
    return score, points
