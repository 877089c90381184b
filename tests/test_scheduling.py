"""FSRS scheduling: grade -> rating mapping, overrides, self-ratings, fixed-clock decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from grader.scheduling import (
    CardState,
    RatingName,
    Scheduler,
    rating_for_override,
    rating_for_self_rating,
    rating_for_verdict,
)

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_verdicts_map_to_ratings_and_ungraded_to_none() -> None:
    assert rating_for_verdict("incorrect") == "again"
    assert rating_for_verdict("partial") == "hard"
    assert rating_for_verdict("correct") == "good"
    assert rating_for_verdict("ungraded") is None


def test_overrides_and_easy_only_on_request() -> None:
    assert rating_for_override("right") == "good"
    assert rating_for_override("wrong") == "again"
    assert rating_for_override("easy") == "easy"
    assert "easy" not in {rating_for_verdict(v) for v in ("incorrect", "partial", "correct")}


@pytest.mark.parametrize(
    ("value", "rating"), [(1, "again"), (2, "again"), (3, "hard"), (4, "good"), (5, "easy")]
)
def test_self_rating_scale(value: int, rating: str) -> None:
    assert rating_for_self_rating(value) == rating


@pytest.mark.parametrize("value", [0, 6, -1])
def test_self_rating_out_of_range(value: int) -> None:
    with pytest.raises(ValueError, match="1-5"):
        rating_for_self_rating(value)


def test_new_card_ratings_order_due_dates() -> None:
    scheduler = Scheduler(fuzz=False)
    due = {r: scheduler.review(None, r, T0).due for r in ("again", "hard", "good", "easy")}
    assert due["again"] == T0 + timedelta(minutes=1)
    assert due["hard"] == T0 + timedelta(minutes=5, seconds=30)  # mean of the 1 and 10 min steps
    assert due["good"] == T0 + timedelta(minutes=10)
    assert due["easy"] > T0 + timedelta(days=1)
    assert scheduler.review(None, "good", T0).phase == "learning"
    assert scheduler.review(None, "easy", T0).phase == "review"


def test_good_answers_graduate_and_intervals_grow() -> None:
    scheduler = Scheduler(fuzz=False)
    state = scheduler.review(None, "good", T0)
    state = scheduler.review(state, "good", state.due)
    assert state.phase == "review"
    first_interval = state.due - T0
    assert first_interval >= timedelta(days=1)
    later = scheduler.review(state, "good", state.due)
    assert later.due - state.due > first_interval
    assert later.last_review == state.due


def test_again_on_a_review_card_relearns() -> None:
    scheduler = Scheduler(fuzz=False)
    state = scheduler.review(None, "easy", T0)
    lapsed = scheduler.review(state, "again", state.due)
    assert lapsed.phase == "relearning"
    assert lapsed.due == state.due + timedelta(minutes=10)
    assert lapsed.stability is not None and state.stability is not None
    assert lapsed.stability < state.stability


def test_scheduling_is_deterministic_without_fuzz() -> None:
    def run() -> CardState:
        scheduler = Scheduler(fuzz=False)
        state = scheduler.review(None, "easy", T0)
        ratings: tuple[RatingName, ...] = ("good", "hard", "good", "easy")
        for rating in ratings:
            state = scheduler.review(state, rating, state.due)
        return state

    assert run() == run()


def test_state_round_trips_as_json_and_rejects_naive_times() -> None:
    state = Scheduler(fuzz=False).review(None, "good", T0)
    assert CardState.model_validate_json(state.model_dump_json()) == state
    with pytest.raises(ValueError, match="timezone-aware"):
        CardState(phase="review", due=datetime(2026, 1, 1))


def test_other_timezones_are_normalised_to_utc() -> None:
    from datetime import timezone

    local = T0.astimezone(timezone(timedelta(hours=2)))
    state = Scheduler(fuzz=False).review(None, "again", local)
    assert state.due == T0 + timedelta(minutes=1)
    assert state.due.tzinfo == UTC


def test_retrievability_decays() -> None:
    scheduler = Scheduler(fuzz=False)
    state = scheduler.review(None, "easy", T0)
    soon = scheduler.retrievability(state, T0 + timedelta(days=1))
    late = scheduler.retrievability(state, T0 + timedelta(days=60))
    assert 0 < late < soon <= 1
