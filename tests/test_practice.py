"""The session library: planning (due first, then new, limits, tags), grading, recording."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from fakes import FakeGrader, FixedClock, cards, make_grade, ungraded

from grader.deckfile import LoadedDeck, load_deck, save_deck
from grader.history import History
from grader.models import Deck
from grader.practice import DONT_KNOW_FEEDBACK, PracticeSession, plan_session, safe_grade
from grader.scheduling import Scheduler


def deck_file(tmp_path: Path, n: int = 5, name: str = "Test deck", **kw: object) -> LoadedDeck:
    path = tmp_path / f"{name.replace(' ', '-')}.yaml"
    save_deck(path, Deck(name=name, cards=cards(n, **kw)))  # type: ignore[arg-type]
    return load_deck(path)


def session(
    history: History, clock: FixedClock, grader: FakeGrader | None = None
) -> PracticeSession:
    return PracticeSession(
        grader=grader or FakeGrader(),
        history=history,
        scheduler=Scheduler(fuzz=False),
        clock=clock,
        session_id="test",
    )


def test_new_cards_in_deck_order_with_limits(tmp_path: Path) -> None:
    deck = deck_file(tmp_path, 5)
    clock = FixedClock()
    with History.open(tmp_path / "home") as history:
        plan = plan_session([deck], history, clock(), new_limit=3, max_cards=10)
        assert [i.card.id for i in plan] == ["c1", "c2", "c3"]
        assert all(i.is_new for i in plan)
        plan = plan_session([deck], history, clock(), new_limit=10, max_cards=2)
        assert [i.card.id for i in plan] == ["c1", "c2"]
        assert plan_session([deck], history, clock(), new_limit=0) == []


def test_due_cards_come_first_most_overdue_first_and_not_due_are_skipped(tmp_path: Path) -> None:
    deck = deck_file(tmp_path, 5)
    clock = FixedClock()
    with History.open(tmp_path / "home") as history:
        s = session(history, clock)
        plan = plan_session([deck], history, clock())
        by_id = {i.card.id: i for i in plan}
        # c3 again (due in 1 min), c1 hard (5.5 min), c2 easy (days away).
        s.record(by_id["c3"], "x", make_grade(0.1), clock())
        s.record(by_id["c1"], "x", make_grade(0.5), clock())
        s.record(by_id["c2"], "x", make_grade(1.0), clock())
        s.override(history.attempts(card_id="c2")[0], "easy")
        clock.advance(minutes=30)
        plan = plan_session([deck], history, clock(), new_limit=10)
    assert [(i.card.id, i.is_new) for i in plan] == [
        ("c3", False),
        ("c1", False),
        ("c4", True),
        ("c5", True),
    ]


def test_a_deck_given_twice_asks_each_card_once(tmp_path: Path) -> None:
    deck = deck_file(tmp_path, 3)
    with History.open(tmp_path / "home") as history:
        plan = plan_session([deck, deck], history, FixedClock()())
    assert [i.card.id for i in plan] == ["c1", "c2", "c3"]


def test_tag_filter_is_case_insensitive(tmp_path: Path) -> None:
    deck = deck_file(tmp_path, 3, tags=[["ops"], ["Data"], []])
    with History.open(tmp_path / "home") as history:
        plan = plan_session([deck], history, FixedClock()(), tags=["data", "OPS"])
        assert [i.card.id for i in plan] == ["c1", "c2"]
        assert plan_session([deck], history, FixedClock()(), tags=["none"]) == []


def test_several_decks_keep_separate_histories(tmp_path: Path) -> None:
    one = deck_file(tmp_path, 2, name="One")
    two = deck_file(tmp_path, 2, name="Two")  # same card ids, different deck
    clock = FixedClock()
    with History.open(tmp_path / "home") as history:
        plan = plan_session([one, two], history, clock())
        assert [(i.deck, i.card.id) for i in plan] == [
            ("One", "c1"),
            ("One", "c2"),
            ("Two", "c1"),
            ("Two", "c2"),
        ]
        session(history, clock).record(plan[0], "x", make_grade(1.0), clock())
        assert history.state("Two", "c1") is None
        assert history.state("One", "c1") is not None


def test_empty_answer_is_i_dont_know_without_calling_the_grader(tmp_path: Path) -> None:
    grader = FakeGrader()
    (card,) = cards(1)
    grade = safe_grade(grader, card, "  \n ")
    assert grader.calls == []
    assert (grade.verdict, grade.score, grade.feedback) == ("incorrect", 0.0, DONT_KNOW_FEEDBACK)
    assert [p.status for p in grade.key_points] == ["missed", "missed"]
    assert grade.evidence.grader == "fake"


def test_a_grader_that_raises_gives_ungraded_not_incorrect(tmp_path: Path) -> None:
    grader = FakeGrader().queue(RuntimeError("connection refused\nat line 2"))
    (card,) = cards(1)
    grade = safe_grade(grader, card, "my answer")
    assert grade.verdict == "ungraded" and grade.score is None
    assert grade.reason == "grader failed: connection refused at line 2"
    assert grader.calls == [("c1", "my answer")]


def test_record_ungraded_then_self_rate(tmp_path: Path) -> None:
    deck = deck_file(tmp_path, 1)
    clock = FixedClock()
    with History.open(tmp_path / "home") as history:
        s = session(history, clock, FakeGrader().queue(ungraded()))
        (item,) = plan_session([deck], history, clock())
        grade = s.grade(item, "an answer")
        attempt = s.record(item, "an answer", grade, clock())
        assert attempt.rating is None and history.state(item.deck, "c1") is None
        clock.advance(seconds=5)
        rated = s.self_rate(attempt, 3)
        assert (rated.self_rating, rated.rating) == (3, "hard")
        assert rated.grade.verdict == "ungraded"
        state = history.state(item.deck, "c1")
        assert state is not None and state.due == attempt.recorded_at + timedelta(minutes=5.5)


def test_an_edited_card_keeps_its_history(tmp_path: Path) -> None:
    deck = deck_file(tmp_path, 2)
    clock = FixedClock()
    with History.open(tmp_path / "home") as history:
        s = session(history, clock)
        first = plan_session([deck], history, clock())[0]
        recorded = s.record(first, "x", make_grade(1.0), clock())
        edited = deck.deck.model_copy(
            update={
                "cards": [
                    deck.deck.cards[0].model_copy(update={"question": "Reworded question?"}),
                    *deck.deck.cards[1:],
                ]
            }
        )
        save_deck(deck.path, edited)
        clock.advance(hours=1)
        plan = plan_session([load_deck(deck.path)], history, clock())
    assert plan[0].card.question == "Reworded question?"
    assert plan[0].state == recorded.state_after and not plan[0].is_new
