"""`compute_stats` with fixed clocks: due, reviewed, retention, accuracy by tag, most missed."""

from __future__ import annotations

from datetime import UTC
from pathlib import Path

from fakes import FakeGrader, FixedClock, cards, make_grade, ungraded

from grader.deckfile import LoadedDeck, load_deck, save_deck
from grader.history import History
from grader.models import Deck
from grader.practice import PracticeSession, plan_session
from grader.scheduling import Scheduler
from grader.stats import UNTAGGED, compute_stats


def make_deck(tmp_path: Path) -> LoadedDeck:
    path = tmp_path / "deck.yaml"
    save_deck(path, Deck(name="Stats deck", cards=cards(4, tags=[["ops"], ["ops", "data"], []])))
    return load_deck(path)


def answer(session: PracticeSession, deck: LoadedDeck, card_id: str, score: float | None) -> None:
    item = next(
        i for i in plan_session([deck], session.history, session.clock()) if i.card.id == card_id
    )
    grade = make_grade(score) if score is not None else ungraded()
    session.record(item, "answer", grade, session.clock())


def test_empty_history(tmp_path: Path) -> None:
    deck = make_deck(tmp_path)
    with History.open(tmp_path / "home") as history:
        stats = compute_stats(history, FixedClock()(), [deck], tz=UTC)
        everything = compute_stats(history, FixedClock()(), tz=UTC)
    assert (stats.cards, stats.new, stats.due_today, stats.attempts) == (4, 4, 0, 0)
    assert stats.retention is None and stats.accuracy is None and stats.most_missed == []
    assert (everything.decks, everything.cards, everything.new) == ([], None, None)


def test_figures_after_two_days_of_practice(tmp_path: Path) -> None:
    deck = make_deck(tmp_path)
    clock = FixedClock()
    with History.open(tmp_path / "home") as history:
        session = PracticeSession(
            grader=FakeGrader(), history=history, scheduler=Scheduler(fuzz=False), clock=clock
        )
        answer(session, deck, "c1", 1.0)  # good: learning, due in 10 min
        answer(session, deck, "c2", 0.1)  # again
        answer(session, deck, "c3", None)  # ungraded, not rated
        attempt = history.attempts(card_id="c2")[0]
        session.override(attempt, "easy")  # c2 now in review, due in days
        clock.advance(minutes=20)
        answer(session, deck, "c1", 0.1)  # c1 missed (learning)
        c2_due = history.state("Stats deck", "c2")
        assert c2_due is not None
        clock.now = c2_due.due
        answer(session, deck, "c2", 0.1)  # a review-phase lapse
        stats = compute_stats(history, clock(), [deck], tz=UTC)

    assert (stats.cards, stats.new) == (4, 2)  # c3 (unrated) and c4 have no schedule
    assert stats.attempts == 5 and stats.cards_reviewed == 3
    assert stats.retention_reviews == 1 and stats.retention == 0.0
    # rated: c1 good, c2 easy, c1 again, c2 again -> 2 of 4 recalled
    assert stats.accuracy == 0.5
    assert stats.mean_score is not None and abs(stats.mean_score - (1.0 + 0.1 * 3) / 4) < 1e-9
    assert stats.due_now == 1  # c1 relearning step has passed; c2 just lapsed (due in 10 min)
    assert stats.due_today == 2
    by_tag = {row.tag: row for row in stats.by_tag}
    assert set(by_tag) == {"ops", "data", UNTAGGED}
    assert (by_tag["ops"].attempts, by_tag["ops"].rated, by_tag["ops"].recalled) == (4, 4, 2)
    assert (by_tag["data"].attempts, by_tag["data"].accuracy) == (2, 0.5)
    assert (by_tag[UNTAGGED].attempts, by_tag[UNTAGGED].accuracy) == (1, None)
    assert [(m.card_id, m.misses, m.attempts) for m in stats.most_missed] == [
        ("c1", 1, 2),
        ("c2", 1, 2),
    ]


def test_removed_cards_and_other_decks_are_left_out(tmp_path: Path) -> None:
    deck = make_deck(tmp_path)
    clock = FixedClock()
    with History.open(tmp_path / "home") as history:
        session = PracticeSession(
            grader=FakeGrader(), history=history, scheduler=Scheduler(fuzz=False), clock=clock
        )
        answer(session, deck, "c4", 0.1)
        smaller = Deck(name="Stats deck", cards=deck.deck.cards[:3])
        save_deck(deck.path, smaller)
        stats = compute_stats(history, clock(), [load_deck(deck.path)], tz=UTC)
        everything = compute_stats(history, clock(), tz=UTC)
    assert stats.attempts == 0 and stats.cards == 3
    assert everything.attempts == 1 and everything.most_missed[0].card_id == "c4"
