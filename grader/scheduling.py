"""Spaced repetition with FSRS: grade -> rating mapping, overrides, self-ratings, card state.

The mapping from a grade to an FSRS rating is: incorrect -> Again, partial -> Hard,
correct -> Good. Easy is never inferred; the learner asks for it. An `ungraded` grade maps to no
rating at all: the card is only rescheduled from the learner's own 1-5 self-rating (the scale of
the seed export: 1 "Not at all" ... 5 "Perfectly"), mapped 1, 2 -> Again; 3 -> Hard; 4 -> Good;
5 -> Easy.

`fsrs` is imported only inside the functions that schedule, so importing this module is cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from grader.models import Verdict

if TYPE_CHECKING:
    import fsrs

RatingName = Literal["again", "hard", "good", "easy"]
Override = Literal["right", "wrong", "easy"]
"""One-keystroke overrides: `r` I was right, `w` I was wrong, `e` easy."""
CardPhase = Literal["learning", "review", "relearning"]
Clock = Callable[[], datetime]
"""Returns the current time, timezone-aware UTC. Injected everywhere so tests use fixed clocks."""

RATING_VALUES: dict[RatingName, int] = {"again": 1, "hard": 2, "good": 3, "easy": 4}
"""FSRS's own numbering of the ratings."""

_BY_VERDICT: dict[Verdict, RatingName] = {
    "incorrect": "again",
    "partial": "hard",
    "correct": "good",
}
_BY_OVERRIDE: dict[Override, RatingName] = {"right": "good", "wrong": "again", "easy": "easy"}
SELF_RATINGS: dict[int, RatingName] = {1: "again", 2: "again", 3: "hard", 4: "good", 5: "easy"}
SELF_RATING_LABELS: dict[int, str] = {
    1: "not at all",
    2: "barely",
    3: "partly",
    4: "well",
    5: "perfectly",
}


def utc_clock() -> datetime:
    """The real clock."""
    return datetime.now(UTC)


def rating_for_verdict(verdict: Verdict) -> RatingName | None:
    """The rating a grade implies, or None for `ungraded` (which never reschedules a card)."""
    return _BY_VERDICT.get(verdict)


def rating_for_override(override: Override) -> RatingName:
    """The rating a learner's override stands for."""
    return _BY_OVERRIDE[override]


def rating_for_self_rating(value: int) -> RatingName:
    """Map the seed export's 1-5 self-rating to an FSRS rating."""
    try:
        return SELF_RATINGS[value]
    except KeyError:
        raise ValueError(f"self-rating must be 1-5, got {value!r}") from None


class CardState(BaseModel):
    """The FSRS memory state of one card, as stored in the history database."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    phase: CardPhase
    """FSRS state: learning, review or relearning."""
    step: int | None = None
    """Learning or relearning step; None in review."""
    stability: float | None = None
    """FSRS stability in days."""
    difficulty: float | None = None
    """FSRS difficulty (1-10)."""
    due: datetime
    """When the card is next due (UTC)."""
    last_review: datetime | None = None
    """When it was last reviewed (UTC)."""

    @field_validator("due", "last_review")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("times must be timezone-aware")
        return value.astimezone(UTC)


_PHASES: tuple[CardPhase, ...] = ("learning", "review", "relearning")


def _to_fsrs(state: CardState | None, now: datetime) -> fsrs.Card:
    import fsrs

    if state is None:
        # card_id and due are passed so fsrs neither sleeps nor reads the wall clock.
        return fsrs.Card(card_id=0, due=now)
    return fsrs.Card(
        card_id=0,
        state=fsrs.State(_PHASES.index(state.phase) + 1),
        step=state.step,
        stability=state.stability,
        difficulty=state.difficulty,
        due=state.due,
        last_review=state.last_review,
    )


def _from_fsrs(card: fsrs.Card) -> CardState:
    return CardState(
        phase=_PHASES[int(card.state) - 1],
        step=card.step,
        stability=card.stability,
        difficulty=card.difficulty,
        due=card.due,
        last_review=card.last_review,
    )


class Scheduler:
    """FSRS scheduling with explicit settings; fuzzing is on for learners, off in tests."""

    def __init__(self, *, fuzz: bool = True, desired_retention: float = 0.9) -> None:
        self.fuzz = fuzz
        self.desired_retention = desired_retention

    def review(self, state: CardState | None, rating: RatingName, now: datetime) -> CardState:
        """The state after reviewing a card (None: never reviewed) with `rating` at `now`."""
        import fsrs

        now = now.astimezone(UTC)
        scheduler = fsrs.Scheduler(
            desired_retention=self.desired_retention, enable_fuzzing=self.fuzz
        )
        card, _log = scheduler.review_card(
            _to_fsrs(state, now), fsrs.Rating(RATING_VALUES[rating]), review_datetime=now
        )
        return _from_fsrs(card)

    def retrievability(self, state: CardState, now: datetime) -> float:
        """Predicted probability of recalling the card at `now`."""
        import fsrs

        scheduler = fsrs.Scheduler(desired_retention=self.desired_retention)
        return float(scheduler.get_card_retrievability(_to_fsrs(state, now), now.astimezone(UTC)))
