"""The offline grader: embeddings, rubric coverage and contradiction cues, calibrated on humans.

No network, no key. Every answer in a batch is encoded in one pass; a calibrated logistic model
(`grader/data/offline_calibration.json`, fitted by `python -m grader.calibration fit`) turns the
features into a score, and the verdict follows from the score.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from grader.calibration import (
    CALIBRATION_FILE,
    Calibration,
    calibration_hash,
    load_calibration,
)
from grader.embedding import MODEL_NAME, SentenceEncoder
from grader.errors import ModelNotInstalledError
from grader.models import Card, Grade, GradeEvidence, PointResult, PointStatus, verdict_for_score
from grader.offline_features import (
    FEATURE_NAMES,
    POINT_MIN_COVER,
    AnswerDetail,
    CardText,
    card_text,
)
from grader.offline_scoring import Scored, combine, compute_features, final_score
from grader.offline_words import STOPWORDS, content_stems, stems_without_negation
from grader.rubric import plain, rubric_for
from grader.spelling import Respeller

if TYPE_CHECKING:
    from grader.offline_features import Matrix

QUESTION_COPY_CAP = 0.2
"""Highest score for an answer that only restates the question."""
SWAP_MIN_SIMILARITY = 0.75
SWAP_MARGIN = 0.12
"""An answer this close (cosine) to another card's reference, and this much closer to it than
to its own card's, answers the other card: data drift's definition given for concept drift."""
SWAP_CAP = 0.2
"""Highest score for such an answer."""
SWAP_MIN_REFERENCE_WORDS = 3
SWAP_SAME_QUESTION = 0.8
"""Two cards whose questions are this close (cosine) ask the same thing ("What does deployment
in MLOps refer to?", "What does deployment refer to in an ML pipeline?": 0.83; data drift's and
concept drift's questions: 0.64-0.69): one card's answer answers the other."""
SEVERAL_CARDS_SHARE = 0.8
SWAP_MAX_ITEM_WORDS = 3
"""A short answer ("data understanding") whose content words are exactly those of another card's
short reference or key point, and not all its own card's, answers that card: too short for the
cosine rule above, which leaves two-word references alone."""
_QUOTE_CHARS = 80
_SPELLING_HINTS = 4


class OfflineGrader:
    """Grades with the embedded all-MiniLM-L6-v2 model and the shipped calibration."""

    kind = "offline"

    def __init__(
        self,
        encoder: SentenceEncoder,
        calibration: Calibration,
        calibration_id: str,
        context: Sequence[Card] = (),
    ) -> None:
        """`context`: the other cards of the learner's deck(s); an answer that restates one of
        them rather than its own card is capped (see SWAP_MIN_SIMILARITY)."""
        if tuple(calibration.features) != FEATURE_NAMES:
            raise ModelNotInstalledError(
                "offline calibration does not match this version's features; "
                "refit with: python -m grader.calibration fit"
            )
        self._encoder = encoder
        self._respeller = Respeller(encoder.known_words())
        self._calibration = calibration
        self._calibration_id = calibration_id
        self._context = tuple(context)

    @property
    def calibration_id(self) -> str:
        """The calibration's hash, recorded with every grade where an LLM grade has its prompt's."""
        return self._calibration_id

    @classmethod
    def load(
        cls, calibration_path: Path = CALIBRATION_FILE, context: Sequence[Card] = ()
    ) -> OfflineGrader:
        """Load the (checksum-verified) embedding model and the calibration."""
        return cls(
            SentenceEncoder.load(),
            load_calibration(calibration_path),
            calibration_hash(calibration_path),
            context,
        )

    def grade(self, card: Card, answer: str) -> Grade:
        return self.grade_many([(card, answer)])[0]

    def close(self) -> None:
        self._encoder.close()

    def grade_many(self, items: Sequence[tuple[Card, str]]) -> list[Grade]:
        if not items:
            return []
        started = time.perf_counter()
        texts: dict[int, CardText] = {}
        prepared: list[tuple[CardText, str]] = []
        for card, answer in items:
            key = id(card)
            if key not in texts:
                texts[key] = card_text(card.question, card.answer, card.footnote, rubric_for(card))
            prepared.append((texts[key], answer))
        try:
            features = compute_features(self._encoder.encode, self._respeller, prepared)
            scored = combine(self._calibration, features)
            swaps = self._swaps([card for card, _ in items], prepared, scored)
        except Exception as exc:  # a grading failure is `ungraded`, never `incorrect`
            if len(items) > 1:  # one answer's failure is its own: grade the others one by one
                return [self.grade_many([item])[0] for item in items]
            latency = (time.perf_counter() - started) * 1000 / len(items)
            return [
                Grade.ungraded(
                    f"offline grader failed: {type(exc).__name__}: {exc}", self._evidence(latency)
                )
                for _ in items
            ]
        latency = (time.perf_counter() - started) * 1000 / len(items)
        return [
            self._grade(card, result, latency, swap)
            for (card, _), result, swap in zip(prepared, scored, swaps, strict=True)
        ]

    @functools.cached_property
    def _context_references(self) -> tuple[list[tuple[str, Card]], Matrix, Matrix]:
        """The context cards' references worth confusing with (three content words or more),
        each once, their vectors and their questions' vectors: encoded on first use, then
        kept."""
        import numpy as np

        unique = {plain(card.answer): card for card in self._context}
        others = [
            (text, card)
            for text, card in unique.items()
            if len(content_stems(text)) >= SWAP_MIN_REFERENCE_WORDS
        ]
        if not others:
            empty = np.zeros((0, 384), dtype=np.float32)
            return [], empty, empty
        vectors = self._encoder.encode(
            [text for text, _ in others] + [plain(card.question) for _, card in others]
        )
        return others, vectors[: len(others)], vectors[len(others) :]

    @functools.cached_property
    def _context_claims(self) -> list[tuple[Card, frozenset[str]]]:
        """The context cards whose references say something (three content words or more),
        with those words."""
        claims = []
        for card in self._context:
            words = stems_without_negation(plain(card.answer))
            if len(words) >= SWAP_MIN_REFERENCE_WORDS:
                claims.append((card, words))
        return claims

    def _answers_several(self, card: Card, text: CardText, detail: AnswerDetail) -> Card | None:
        """The first of two or more other cards whose references the answer holds nearly whole
        (four fifths of their words) beyond its own card's words: pasting the deck's answers
        answers no one card."""
        words = stems_without_negation(detail.answer)
        own = stems_without_negation(" ".join((text.question, text.reference, *text.points)))
        question = plain(card.question).lower()
        held = [
            other
            for other, claim in self._context_claims
            if other.id != card.id
            and plain(other.question).lower() != question
            and not claim <= own
            and len(claim & words) >= SEVERAL_CARDS_SHARE * len(claim)
        ]
        return held[0] if len(held) >= 2 else None

    @functools.cached_property
    def _context_items(self) -> dict[frozenset[str], list[Card]]:
        """The context cards' short references and key points, by their content words."""
        items: dict[frozenset[str], list[Card]] = {}
        for card in self._context:
            for text in dict.fromkeys((plain(card.answer), *rubric_for(card))):
                words = frozenset(content_stems(text))
                if 0 < len(words) <= SWAP_MAX_ITEM_WORDS:
                    items.setdefault(words, []).append(card)
        return items

    def _short_swap(self, card: Card, text: CardText, detail: AnswerDetail) -> Card | None:
        """The context card whose short reference or key point the answer names word for word,
        when some of those words are not its own card's at all."""
        words = frozenset(content_stems(detail.answer))
        if not words or len(words) > SWAP_MAX_ITEM_WORDS or detail.polarity is not None:
            return None
        own = stems_without_negation(
            " ".join((text.question, text.reference, text.footnote, *text.points))
        )
        if stems_without_negation(detail.answer) <= own or _spells_out(detail.answer, own):
            return None
        question = plain(card.question).lower()
        for other in self._context_items.get(words, []):
            if other.id != card.id and plain(other.question).lower() != question:
                return other
        return None

    def _swaps(
        self, cards: Sequence[Card], prepared: Sequence[tuple[CardText, str]], scored: list[Scored]
    ) -> list[Card | None]:
        """For each answer, the context card it answers instead of its own, if any: closer to
        that card's reference than to anything of its own (reference, key points) by a margin."""
        # a one- or two-word reference ("FALSE", "12 layers") is judged by its own rules, and a
        # definition can only be confused with another when it says something
        answered = [
            i
            for i, result in enumerate(scored)
            if result.detail.answer
            and result.detail.polarity is None
            and len(content_stems(prepared[i][0].reference)) >= SWAP_MIN_REFERENCE_WORDS
        ]
        swaps: list[Card | None] = [None] * len(cards)
        if not self._context:
            return swaps
        for i, (card, result) in enumerate(zip(cards, scored, strict=True)):
            if result.detail.answer:
                swaps[i] = self._answers_several(
                    card, prepared[i][0], result.detail
                ) or self._short_swap(card, prepared[i][0], result.detail)
        answered = [
            i
            for i in answered
            if swaps[i] is None and not _names_own_point(prepared[i][0], scored[i])
        ]
        if not answered:
            return swaps
        others, other_vecs, other_question_vecs = self._context_references
        if not others:
            return swaps
        n = len(answered)
        vectors = self._encoder.encode(
            [scored[i].detail.answer for i in answered]
            + [prepared[i][0].reference for i in answered]
            + [prepared[i][0].question for i in answered]
        )
        answer_vecs, own_vecs, question_vecs = vectors[:n], vectors[n : 2 * n], vectors[2 * n :]
        similarity = answer_vecs @ other_vecs.T
        same_ask = question_vecs @ other_question_vecs.T >= SWAP_SAME_QUESTION
        for row, i in enumerate(answered):
            reference = prepared[i][0].reference
            own = max(float(answer_vecs[row] @ own_vecs[row]), *scored[i].detail.point_cover, 0.0)
            for column in similarity[row].argsort()[::-1]:
                text, other = others[int(column)]
                same_question = plain(other.question).lower() == plain(cards[i].question).lower()
                if (
                    other.id == cards[i].id
                    or same_question
                    or same_ask[row, column]
                    or text.lower() in reference.lower()
                ):
                    continue  # itself (or another card asking the same), or its own point
                best = float(similarity[row, column])
                if best >= SWAP_MIN_SIMILARITY and best - own >= SWAP_MARGIN:
                    swaps[i] = other
                break
        return swaps

    def _evidence(self, latency_ms: float) -> GradeEvidence:
        return GradeEvidence(
            grader="offline",
            model=MODEL_NAME,
            prompt_hash=self._calibration_id,
            latency_ms=round(latency_ms, 3),
            attempts=1,
        )

    def _grade(
        self, card: CardText, result: Scored, latency: float, swap: Card | None = None
    ) -> Grade:
        detail = result.detail
        score, point_scores = final_score(self._calibration, result)
        if swap is not None:
            score = min(score, SWAP_CAP)
            point_scores = [min(p, SWAP_CAP) for p in point_scores]
            detail.contradictions.insert(
                0, f"This answers another card: \u201c{plain(swap.question)}\u201d"
            )
        if len(point_scores) != len(card.points):
            point_scores = point_scores[:1] * len(card.points)
        if not detail.answer:
            score = 0.0
        elif detail.copies_question:
            score = min(score, QUESTION_COPY_CAP)
        score = round(min(1.0, max(0.0, score)), 4)
        verdict = verdict_for_score(score)
        points = [
            _point_result(point, point_score, cover, chunk)
            for point, point_score, cover, chunk in zip(
                card.points, point_scores, detail.point_cover, detail.point_chunk, strict=True
            )
        ]
        misconceptions = detail.contradictions if verdict != "correct" else []
        return Grade(
            score=score,
            verdict=verdict,
            key_points=points,
            misconceptions=list(misconceptions),
            feedback=_feedback(
                verdict,
                points,
                detail,
                bool(misconceptions),
                swap is not None,
                wanted=result.required or len(points),
            ),
            evidence=self._evidence(latency),
        )


def _spells_out(answer: str, own: frozenset[str]) -> bool:
    """Whether the answer's initials are a word of its own card: "continuous integration" for a
    card about CI."""
    words = [w for w in re.findall(r"[A-Za-z]+", answer.lower()) if w not in STOPWORDS]
    return len(words) > 1 and "".join(w[0] for w in words) in own


def _names_own_point(card: CardText, result: Scored) -> bool:
    """Whether the answer plainly names one of its card's several key points (close in meaning,
    and in a word of that point's own): "data pipelines, trained models and a jupyter notebook"
    lists this card's components with a stray item; it does not answer the notebook card."""
    detail = result.detail
    return len(card.points) > 1 and any(
        cover >= POINT_MIN_COVER and own > 0
        for cover, own in zip(detail.point_cover, detail.point_own_words, strict=True)
    )


def _point_result(point: str, score: float, cover: float, chunk: str) -> PointResult:
    """A point's status follows its own calibrated score, on the same thresholds as the grade."""
    if not chunk:
        return PointResult(point=point, status="missed", evidence="no answer")
    verdict = verdict_for_score(score)
    status: PointStatus = {"correct": "hit", "partial": "partial"}.get(verdict, "missed")  # type: ignore[assignment]
    quote = chunk if len(chunk) <= _QUOTE_CHARS else chunk[: _QUOTE_CHARS - 1] + "…"
    return PointResult(
        point=point,
        status=status,
        evidence=f"closest part of the answer: \u201c{quote}\u201d (similarity {cover:.2f})",
    )


def _feedback(
    verdict: str,
    points: list[PointResult],
    detail: AnswerDetail,
    contradicts: bool,
    answers_another_card: bool = False,
    wanted: int = 0,
) -> str:
    """One to three sentences for the learner, built from the rubric only (never from the
    learner's own text). `wanted`: how many points the question asks for ("name one reason");
    0 or all of them when it asks for the whole answer."""
    wanted = wanted or len(points)
    missed = [p.point for p in points if p.status == "missed"]
    in_part = [p.point for p in points if p.status == "partial"]
    hit = [p for p in points if p.status == "hit"]
    sentences: list[str] = []
    if not detail.answer:
        sentences.append("No answer given.")
        if detail.removed_meta:
            sentences.append("Instructions to the grader are ignored; only the content is graded.")
        sentences.append(f"The key idea: {points[0].point}." if points else "")
    elif verdict == "correct":
        sentences.append("Correct.")
        if wanted < len(points) and len(hit) >= wanted:
            others = [p.point for p in points if p.status != "hit"]
            sentences.append(f"Also right would be: {others[0]}." if others else "")
        else:
            sentences.append(
                _ask_for(
                    missed,
                    in_part,
                    "For a complete answer, also mention",
                    "For a complete answer, be more precise about",
                )
                or "You covered the key points."
            )
    elif verdict == "partial":
        sentences.append(_partly_right(len(hit), len(in_part), len(points), wanted))
        if contradicts:
            sentences.append("Part of your answer contradicts the reference.")
        if ask := _ask_for(missed, in_part, "Missing", "Say more about"):
            sentences.append(ask)
    else:
        sentences.append("Not quite.")
        if detail.copies_question:
            sentences.append("Restating the question earns no credit.")
        elif answers_another_card:
            sentences.append("That is the answer to another card, not to this one.")
        elif contradicts:
            sentences.append("Your answer contradicts the reference.")
        if missed or in_part:
            sentences.append(f"The answer needs: {(missed or in_part)[0]}.")
    if detail.removed_meta and detail.answer:
        sentences.insert(1, "Instructions to the grader are ignored; only the content is graded.")
    if detail.respelled:  # the card's spelling, never the learner's words
        sentences.append(f"Check the spelling of: {', '.join(detail.respelled[:_SPELLING_HINTS])}.")
    return " ".join(s for s in sentences[:3] if s).replace("..", ".")


def _ask_for(missed: list[str], in_part: list[str], missing: str, vague: str) -> str:
    """The next point to ask for: a missed one first ("Missing: X."), else one covered in part
    ("Say more about: X."); "" when there is none."""
    if missed:
        return f"{missing}: {missed[0]}."
    return f"{vague}: {in_part[0]}." if in_part else ""


def _partly_right(hit: int, in_part: int, points: int, wanted: int) -> str:
    if points == 1:
        return "Partly right."
    more = f", and {in_part} more in part" if in_part else ""
    if wanted < points:
        return f"Partly right: you named {hit} of the {wanted} asked for{more}."
    return f"Partly right: you covered {hit} of {points} key points{more}."
