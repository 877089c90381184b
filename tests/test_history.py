"""The SQLite attempts store: round trips, migrations, amendments, concurrent sessions."""

from __future__ import annotations

import itertools
import multiprocessing
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fakes import make_grade, ungraded

from grader.errors import GraderError
from grader.history import MIGRATIONS, AttemptInput, History
from grader.models import Grade
from grader.scheduling import Scheduler

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
SCHED = Scheduler(fuzz=False)


def attempt(card_id: str = "c1", grade: Grade | None = None, *, deck: str = "Deck") -> AttemptInput:
    return AttemptInput(
        session_id="s1",
        deck=deck,
        deck_path="decks/deck.yaml",
        card_id=card_id,
        question="What is drift?",
        tags=["ops"],
        answer="When the data changes.\nSecond line.",
        grade=grade or make_grade(0.9, points=["data changes"]),
        answered_at=T0,
    )


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    grade = make_grade(0.5, points=["a", "b"], feedback="Half there.")
    with History.open(tmp_path) as history:
        recorded = history.record(attempt(grade=grade), rating="hard", scheduler=SCHED, now=T0)
    with History.open(tmp_path) as history:
        (stored,) = history.attempts()
    assert stored == recorded
    assert stored.grade == grade
    assert stored.answer == "When the data changes.\nSecond line."
    assert stored.tags == ["ops"]
    assert (stored.verdict, stored.score) == ("partial", 0.5)
    assert (stored.proposed_rating, stored.rating, stored.override) == ("hard", "hard", None)
    assert stored.state_before is None
    assert stored.state_after == SCHED.review(None, "hard", T0)
    assert stored.answered_at == T0 and stored.recorded_at == T0


def test_state_chains_from_attempt_to_attempt(tmp_path: Path) -> None:
    with History.open(tmp_path) as history:
        first = history.record(attempt(), rating="good", scheduler=SCHED, now=T0)
        later = T0 + timedelta(hours=1)
        second = history.record(attempt(), rating="good", scheduler=SCHED, now=later)
        assert second.state_before == first.state_after
        assert history.state("Deck", "c1") == second.state_after
        assert history.card_states("Deck") == {"c1": second.state_after}
        assert history.card_states("Other") == {}


def test_ungraded_attempt_is_kept_without_rescheduling(tmp_path: Path) -> None:
    with History.open(tmp_path) as history:
        recorded = history.record(attempt(grade=ungraded()), rating=None, scheduler=SCHED, now=T0)
        assert recorded.rating is None and recorded.state_after is None
        assert recorded.grade.verdict == "ungraded" and recorded.grade.reason
        assert history.state("Deck", "c1") is None
        rated = history.amend(recorded.id, rating="good", self_rating=4, scheduler=SCHED, now=T0)
    assert (rated.self_rating, rated.rating) == (4, "good")
    assert rated.state_after == SCHED.review(None, "good", T0)


def test_override_replaces_the_state_the_grade_produced(tmp_path: Path) -> None:
    with History.open(tmp_path) as history:
        recorded = history.record(
            attempt(grade=make_grade(0.1)), rating="again", scheduler=SCHED, now=T0
        )
        amended = history.amend(
            recorded.id, rating="good", override="right", scheduler=SCHED, now=T0
        )
        assert amended.grade.verdict == "incorrect"
        assert (amended.proposed_rating, amended.override, amended.rating) == (
            "again",
            "right",
            "good",
        )
        assert amended.state_after == SCHED.review(None, "good", T0)
        assert history.state("Deck", "c1") == amended.state_after
        assert amended.amended_at == T0


def test_amend_after_a_later_review_keeps_the_later_state(tmp_path: Path) -> None:
    with History.open(tmp_path) as history:
        first = history.record(attempt(), rating="good", scheduler=SCHED, now=T0)
        second = history.record(attempt(), rating="good", scheduler=SCHED, now=T0)
        history.amend(first.id, rating="again", override="wrong", scheduler=SCHED, now=T0)
        assert history.state("Deck", "c1") == second.state_after


def test_migrations_apply_once_and_in_order(tmp_path: Path) -> None:
    History.open(tmp_path).close()
    with History.open(tmp_path) as history:
        assert history.applied_migrations() == [name for name, _ in MIGRATIONS]
    db = sqlite3.connect(tmp_path / "history.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_unreadable_database_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / "history.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(GraderError, match=r"history\.db: not a usable database \(file is not a"):
        History.open(tmp_path)


def test_deck_and_card_filters(tmp_path: Path) -> None:
    with History.open(tmp_path) as history:
        history.record(attempt("c1"), rating="good", scheduler=SCHED, now=T0)
        history.record(attempt("c2"), rating="good", scheduler=SCHED, now=T0)
        history.record(attempt("c1", deck="Other"), rating="good", scheduler=SCHED, now=T0)
        assert len(history.attempts()) == 3
        assert [a.card_id for a in history.attempts(decks=["Deck"])] == ["c1", "c2"]
        assert len(history.attempts(decks=["Deck"], card_id="c1")) == 1
        assert history.attempts(decks=[]) == []
        assert history.deck_names() == ["Deck", "Other"]


def test_two_open_sessions_build_on_each_others_reviews(tmp_path: Path) -> None:
    """Each session planned from the same old state; the second write re-reads the first's."""
    one, two = History.open(tmp_path), History.open(tmp_path)
    try:
        a = one.record(attempt(), rating="good", scheduler=SCHED, now=T0)
        b = two.record(attempt(), rating="good", scheduler=SCHED, now=T0 + timedelta(minutes=11))
    finally:
        one.close()
        two.close()
    assert b.state_before == a.state_after
    assert b.state_after is not None and b.state_after.phase == "review"


def _hammer(home: str, worker: int, count: int) -> None:
    with History.open(Path(home)) as history:
        for i in range(count):
            card = f"c{i % 3}"
            history.record(
                attempt(card).model_copy(update={"session_id": f"w{worker}"}),
                rating="good",
                scheduler=SCHED,
                now=T0 + timedelta(minutes=i),
            )


def test_concurrent_processes_lose_no_attempt_and_keep_chains(tmp_path: Path) -> None:
    History.open(tmp_path).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_hammer, args=(str(tmp_path), w, 15)) for w in range(3)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    with History.open(tmp_path) as history:
        attempts = history.attempts()
        assert len(attempts) == 45
        for card in ("c0", "c1", "c2"):
            chain = [a for a in attempts if a.card_id == card]
            assert chain[0].state_before is None
            for earlier, later in itertools.pairwise(chain):
                assert later.state_before == earlier.state_after
            assert history.state("Deck", card) == chain[-1].state_after
