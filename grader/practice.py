"""Practice sessions as a library: which cards to ask, grading an answer, recording the attempt.

No printing here: the CLI (`grader.cli.practice`) asks, shows and reads keys; this module decides.
An attempt is recorded as soon as it is graded, with the rating its grade maps to (none when
ungraded), so a closed terminal never loses it; an override or a self-rating then amends it.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime
from typing import get_args

from pydantic import BaseModel, ConfigDict

from grader.deckfile import LoadedDeck
from grader.graders.base import Grader
from grader.history import Attempt, AttemptInput, History
from grader.models import Card, Grade, GradeEvidence, GraderKind, PointResult
from grader.rubric import rubric_for
from grader.scheduling import (
    CardState,
    Clock,
    Override,
    RatingName,
    Scheduler,
    rating_for_override,
    rating_for_self_rating,
    rating_for_verdict,
)

DEFAULT_NEW = 10
DEFAULT_MAX = 50
DONT_KNOW_FEEDBACK = "No answer given: read the reference answer below, then try again next time."


class QueueItem(BaseModel):
    """One card to ask in a session."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    deck: str
    """The deck's name (history key)."""
    deck_path: str
    card: Card
    state: CardState | None
    """The FSRS state when the session was planned (None: a new card)."""

    @property
    def is_new(self) -> bool:
        return self.state is None


def _matches(card: Card, tags: Sequence[str]) -> bool:
    if not tags:
        return True
    wanted = {t.casefold() for t in tags}
    return any(t.casefold() in wanted for t in card.tags)


def plan_session(
    decks: Sequence[LoadedDeck],
    history: History,
    now: datetime,
    *,
    new_limit: int = DEFAULT_NEW,
    max_cards: int | None = DEFAULT_MAX,
    tags: Sequence[str] = (),
) -> list[QueueItem]:
    """Due cards first (most overdue first), then new cards in deck order, within the limits.

    Reviewed cards that are not yet due are left out. `new_limit` caps new cards, `max_cards`
    the whole session; `tags` keeps only cards carrying any of them. A card comes up once
    however often its deck is given (history knows a card by deck name and card id, so two
    copies of a deck are one deck; the first one given is asked from).
    """
    due: list[QueueItem] = []
    new: list[QueueItem] = []
    seen: set[tuple[str, str]] = set()
    for loaded in decks:
        name = loaded.deck.name
        states = history.card_states(name)
        for card in loaded.deck.cards:
            if not _matches(card, tags) or (name, card.id) in seen:
                continue
            seen.add((name, card.id))
            state = states.get(card.id)
            item = QueueItem(deck=name, deck_path=str(loaded.path), card=card, state=state)
            if state is None:
                new.append(item)
            elif state.due <= now:
                due.append(item)
    due.sort(key=lambda item: item.state.due if item.state else now)
    queue = due + new[: max(new_limit, 0)]
    return queue if max_cards is None else queue[: max(max_cards, 0)]


class EmptyPlan(BaseModel):
    """Why `plan_session` found nothing to practise."""

    model_config = ConfigDict(frozen=True)

    matching: int
    """Cards carrying one of the tags (all cards without a tag filter)."""
    new_waiting: int
    """Matching cards never reviewed (left out by the new-card limit)."""
    next_due: datetime | None
    """When the first reviewed matching card falls due."""
    tags_in_decks: list[str]


def explain_empty_plan(
    decks: Sequence[LoadedDeck], history: History, tags: Sequence[str] = ()
) -> EmptyPlan:
    """The facts behind an empty session plan: no card with the tags, new cards held back by
    the limit, or every card reviewed and not yet due."""
    matching = new_waiting = 0
    next_due: datetime | None = None
    all_tags: set[str] = set()
    for loaded in decks:
        states = history.card_states(loaded.deck.name)
        for card in loaded.deck.cards:
            all_tags.update(card.tags)
            if not _matches(card, tags):
                continue
            matching += 1
            state = states.get(card.id)
            if state is None:
                new_waiting += 1
            elif next_due is None or state.due < next_due:
                next_due = state.due
    return EmptyPlan(
        matching=matching,
        new_waiting=new_waiting,
        next_due=next_due,
        tags_in_decks=sorted(all_tags, key=str.casefold),
    )


def _evidence_kind(grader_kind: str) -> GraderKind:
    for candidate in get_args(GraderKind):
        if candidate == grader_kind:
            return candidate  # type: ignore[no-any-return]
    return "offline"


def dont_know_grade(card: Card, grader_kind: str) -> Grade:
    """The grade of an empty answer ("I don't know"): incorrect, every key point missed."""
    return Grade(
        score=0.0,
        verdict="incorrect",
        key_points=[PointResult(point=p, status="missed") for p in rubric_for(card)],
        feedback=DONT_KNOW_FEEDBACK,
        evidence=GradeEvidence(grader=_evidence_kind(grader_kind)),
    )


def safe_grade(grader: Grader, card: Card, answer: str) -> Grade:
    """Grade an answer; any failure becomes `ungraded` with its reason, never a crash."""
    if not answer.strip():
        return dont_know_grade(card, grader.kind)
    try:
        return grader.grade(card, answer)
    except Exception as exc:  # a grader must not end the session; the learner self-rates instead
        reason = " ".join(str(exc).split()) or type(exc).__name__
        evidence = GradeEvidence(grader=_evidence_kind(grader.kind))
        return Grade.ungraded(f"grader failed: {reason}", evidence)


class PracticeSession:
    """Grades and records the attempts of one session. Everything external is injected."""

    def __init__(
        self,
        *,
        grader: Grader,
        history: History,
        scheduler: Scheduler,
        clock: Clock,
        session_id: str | None = None,
    ) -> None:
        self.grader = grader
        self.history = history
        self.scheduler = scheduler
        self.clock = clock
        self.session_id = session_id or secrets.token_hex(6)

    def grade(self, item: QueueItem, answer: str) -> Grade:
        return safe_grade(self.grader, item.card, answer)

    def record(self, item: QueueItem, answer: str, grade: Grade, answered_at: datetime) -> Attempt:
        """Record a graded attempt with the rating its grade maps to (none when ungraded)."""
        return self.history.record(
            AttemptInput(
                session_id=self.session_id,
                deck=item.deck,
                deck_path=item.deck_path,
                card_id=item.card.id,
                question=item.card.question,
                tags=list(item.card.tags),
                answer=answer,
                grade=grade,
                answered_at=answered_at,
            ),
            rating=rating_for_verdict(grade.verdict),
            scheduler=self.scheduler,
            now=self.clock(),
        )

    def override(self, attempt: Attempt, override: Override) -> Attempt:
        """Apply the learner's one-key override; the original grade stays recorded beside it."""
        return self.history.amend(
            attempt.id,
            rating=rating_for_override(override),
            override=override,
            scheduler=self.scheduler,
            now=self.clock(),
        )

    def self_rate(self, attempt: Attempt, value: int) -> Attempt:
        """Reschedule from the learner's 1-5 self-rating (used when the grade is ungraded)."""
        rating: RatingName = rating_for_self_rating(value)
        return self.history.amend(
            attempt.id,
            rating=rating,
            self_rating=value,
            scheduler=self.scheduler,
            now=self.clock(),
        )
