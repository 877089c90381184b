"""Test doubles shared by the suite: a FakeGrader you queue Grades into; it records its calls."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from grader.models import Card, Grade, GradeEvidence, PointResult, verdict_for_score


def make_grade(score: float, *, feedback: str = "Fine.", points: Sequence[str] = ()) -> Grade:
    """A valid fake grade for `score` (its verdict follows from the score)."""
    status = "hit" if score >= 0.8 else ("partial" if score >= 0.35 else "missed")
    return Grade(
        score=score,
        verdict=verdict_for_score(score),
        key_points=[PointResult(point=p, status=status) for p in points],
        feedback=feedback,
        evidence=GradeEvidence(grader="fake", model="fake"),
    )


def ungraded(reason: str = "endpoint unreachable") -> Grade:
    return Grade.ungraded(reason, GradeEvidence(grader="fake", model="fake"))


@dataclass
class FakeGrader:
    """Returns queued grades in order (or raises queued exceptions); records every call.

    When the queue is empty it returns `default` (a correct grade unless set).
    """

    grades: deque[Grade | Exception] = field(default_factory=deque)
    default: Grade = field(default_factory=lambda: make_grade(1.0))
    calls: list[tuple[str, str]] = field(default_factory=list)
    kind: str = "fake"
    closed: bool = False

    def queue(self, *items: Grade | Exception) -> FakeGrader:
        self.grades.extend(items)
        return self

    def grade(self, card: Card, answer: str) -> Grade:
        self.calls.append((card.id, answer))
        item = self.grades.popleft() if self.grades else self.default
        if isinstance(item, Exception):
            raise item
        return item

    def grade_many(self, items: Sequence[tuple[Card, str]]) -> list[Grade]:
        return [self.grade(card, answer) for card, answer in items]

    def close(self) -> None:
        self.closed = True


@dataclass
class FixedClock:
    """A clock tests move by hand; always timezone-aware UTC."""

    now: datetime = field(default_factory=lambda: datetime(2026, 1, 5, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now = self.now + timedelta(**delta)
        return self.now


def cards(n: int, *, tags: Iterable[Sequence[str]] = ()) -> list[Card]:
    """`n` simple cards with ids c1..cn (optionally tagged, one tag list per card)."""
    tag_lists = list(tags)
    return [
        Card(
            id=f"c{i}",
            question=f"Question {i}?",
            answer=f"- point {i}a\n- point {i}b",
            footnote=f"Footnote {i}.",
            tags=list(tag_lists[i - 1]) if i - 1 < len(tag_lists) else [],
        )
        for i in range(1, n + 1)
    ]
