"""Practice statistics from the history: due today, reviewed, retention, accuracy, most missed.

Definitions (also in docs/practice.md):
- *due today*: reviewed cards whose next review falls before the end of today (local time);
- *reviewed today*: attempts recorded since the start of today;
- *retention*: of the attempts on cards that were in FSRS review phase, the share not rated Again
  (FSRS's "true retention": recall after a real interval, learning steps excluded);
- *accuracy*: of the rated attempts, the share rated Good or Easy, after overrides and
  self-ratings (what the learner ended up with, not only what the grader said);
- *mean score*: the grader's mean score over graded attempts;
- *most missed*: cards with the most attempts rated Again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, time, timedelta, tzinfo

from pydantic import BaseModel, ConfigDict

from grader.deckfile import LoadedDeck
from grader.history import Attempt, History

UNTAGGED = "(untagged)"


class TagAccuracy(BaseModel):
    """Accuracy of the attempts on cards carrying one tag."""

    model_config = ConfigDict(extra="forbid")

    tag: str
    attempts: int
    rated: int
    """Attempts that were rated (rescheduled)."""
    recalled: int
    """Rated Good or Easy."""
    accuracy: float | None
    """recalled / rated."""
    mean_score: float | None
    """Mean grader score over graded attempts."""


class MissedCard(BaseModel):
    """A card and how often it was missed."""

    model_config = ConfigDict(extra="forbid")

    deck: str
    card_id: str
    question: str
    attempts: int
    misses: int
    """Attempts rated Again."""
    last_verdict: str


class Stats(BaseModel):
    """Statistics over some decks (or every practised deck)."""

    model_config = ConfigDict(extra="forbid")

    decks: list[str]
    """Deck names covered."""
    cards: int | None
    """Cards in the given deck files (None when no deck file was given)."""
    new: int | None
    """Cards never reviewed (None when no deck file was given)."""
    due_today: int
    due_now: int
    reviewed_today: int
    attempts: int
    cards_reviewed: int
    retention: float | None
    retention_reviews: int
    """How many review-phase attempts the retention is computed from."""
    accuracy: float | None
    mean_score: float | None
    by_tag: list[TagAccuracy]
    most_missed: list[MissedCard]
    next_due: datetime | None
    """Earliest next review among the covered cards."""


def _day_bounds(now: datetime, tz: tzinfo | None) -> tuple[datetime, datetime]:
    local = now.astimezone(tz)
    start = datetime.combine(local.date(), time(0), tzinfo=local.tzinfo)
    return start, start + timedelta(days=1)


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _tag_rows(
    attempts: Sequence[Attempt], tags_of: dict[tuple[str, str], list[str]]
) -> list[TagAccuracy]:
    groups: dict[str, list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        tags = tags_of.get((attempt.deck, attempt.card_id), attempt.tags) or [UNTAGGED]
        for tag in tags:
            groups[tag].append(attempt)
    rows = []
    for tag in sorted(groups):
        group = groups[tag]
        rated = [a for a in group if a.rating is not None]
        recalled = [a for a in rated if a.rating in ("good", "easy")]
        scores = [a.score for a in group if a.score is not None]
        rows.append(
            TagAccuracy(
                tag=tag,
                attempts=len(group),
                rated=len(rated),
                recalled=len(recalled),
                accuracy=_ratio(len(recalled), len(rated)),
                mean_score=_mean(scores),
            )
        )
    return rows


def _most_missed(attempts: Sequence[Attempt], top: int) -> list[MissedCard]:
    by_card: dict[tuple[str, str], list[Attempt]] = defaultdict(list)
    for attempt in attempts:
        by_card[(attempt.deck, attempt.card_id)].append(attempt)
    missed = []
    for (deck, card_id), group in by_card.items():
        misses = sum(1 for a in group if a.rating == "again")
        if misses:
            missed.append(
                MissedCard(
                    deck=deck,
                    card_id=card_id,
                    question=group[-1].question,
                    attempts=len(group),
                    misses=misses,
                    last_verdict=group[-1].verdict,
                )
            )
    missed.sort(key=lambda m: (-m.misses, -m.attempts, m.deck, m.card_id))
    return missed[:top]


def compute_stats(
    history: History,
    now: datetime,
    decks: Sequence[LoadedDeck] | None = None,
    *,
    top: int = 5,
    tz: tzinfo | None = None,
) -> Stats:
    """Statistics for the given deck files (their current cards), or every practised deck.

    `tz` is the timezone that decides where "today" begins (default: the machine's local time).
    """
    start, end = _day_bounds(now, tz)
    if decks is None:
        names = history.deck_names()
        attempts = history.attempts()
        states = {(n, cid): s for n in names for cid, s in history.card_states(n).items()}
        tags_of: dict[tuple[str, str], list[str]] = {}
        cards = new = None
    else:
        names = sorted({d.deck.name for d in decks})
        current = {(d.deck.name, c.id): c for d in decks for c in d.deck.cards}
        attempts = [a for a in history.attempts(decks=names) if (a.deck, a.card_id) in current]
        all_states = {(n, cid): s for n in names for cid, s in history.card_states(n).items()}
        states = {key: s for key, s in all_states.items() if key in current}
        tags_of = {key: list(card.tags) for key, card in current.items()}
        cards = len(current)
        new = sum(1 for key in current if key not in states)

    rated = [a for a in attempts if a.rating is not None]
    reviews = [a for a in rated if a.state_before is not None and a.state_before.phase == "review"]
    scores = [a.score for a in attempts if a.score is not None]
    return Stats(
        decks=names,
        cards=cards,
        new=new,
        due_today=sum(1 for s in states.values() if s.due < end),
        due_now=sum(1 for s in states.values() if s.due <= now),
        reviewed_today=sum(1 for a in attempts if a.recorded_at >= start),
        attempts=len(attempts),
        cards_reviewed=len({(a.deck, a.card_id) for a in attempts}),
        retention=_ratio(sum(1 for a in reviews if a.rating != "again"), len(reviews)),
        retention_reviews=len(reviews),
        accuracy=_ratio(sum(1 for a in rated if a.rating in ("good", "easy")), len(rated)),
        mean_score=_mean(scores),
        by_tag=_tag_rows(attempts, tags_of),
        most_missed=_most_missed(attempts, top),
        next_due=min((s.due for s in states.values()), default=None),
    )
