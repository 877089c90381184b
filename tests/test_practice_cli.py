"""`grader practice` and `grader stats` through CliRunner with a fake grader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeGrader, cards, make_grade, ungraded
from typer.testing import CliRunner

import grader.cli.practice as practice_cli
from grader.cli import app
from grader.deckfile import save_deck
from grader.history import Attempt, History
from grader.models import Deck

runner = CliRunner()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeGrader:
    grader = FakeGrader()
    monkeypatch.setattr(practice_cli, "build_grader", lambda *args: grader)
    return grader


@pytest.fixture
def deck(tmp_path: Path) -> Path:
    path = tmp_path / "deck.yaml"
    save_deck(path, Deck(name="Test deck", cards=cards(3, tags=[["ops"], ["ops", "data"]])))
    return path


def attempts(home: Path) -> list[Attempt]:
    with History.open(home) as history:
        return history.attempts()


def test_session_grades_shows_and_records_with_override(
    fake: FakeGrader, deck: Path, grader_home: Path
) -> None:
    fake.queue(
        make_grade(0.9, points=["point 1a"], feedback="Well done [bold]really[/bold]."),
        make_grade(0.1, feedback="Not quite."),
    )
    keys = "line a\nline b\n\n" + "\n" + "wrong answer\n\n" + "r\n" + "q\n"
    result = runner.invoke(app, ["practice", str(deck), "--new", "5"], input=keys)
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "3 card(s): 0 due, 3 new" in out
    assert "Question 1?" in out and "Question 2?" in out and "Question 3?" in out
    assert "CORRECT  score 0.90" in out and "✓ point 1a" in out
    assert "Well done [bold]really[/bold]." in out  # learner-visible text is never markup
    assert "Reference answer:\n• point 1a\n• point 1b\nFootnote:\nFootnote 1." in out
    assert "→ Good (from correct)" in out and "→ Again (from incorrect)" in out
    assert max(len(line) for line in out.splitlines() if "→" in line or "Enter" in line) <= 80
    assert "Saved: Good; next review" in out
    assert "Saved: Good (override: right); next review" in out
    assert "Session over: 2 answer(s) saved." in out
    assert "Traceback" not in result.stderr
    assert fake.calls == [("c1", "line a\nline b"), ("c2", "wrong answer")]
    assert fake.closed  # its connections go with the session
    first, second = attempts(grader_home)
    assert (first.answer, first.rating, first.override) == ("line a\nline b", "good", None)
    assert (second.verdict, second.proposed_rating) == ("incorrect", "again")
    assert (second.override, second.rating) == ("right", "good")
    assert second.grade.feedback == "Not quite."


def test_ungraded_asks_for_a_self_rating(fake: FakeGrader, deck: Path, grader_home: Path) -> None:
    fake.queue(ungraded("endpoint returned HTTP 500 after 3 retries"))
    keys = "my answer\n\n" + "x\n" + "4\n" + "q\n"
    result = runner.invoke(app, ["practice", str(deck)], input=keys)
    assert result.exit_code == 0, result.stderr
    assert "UNGRADED" in result.stdout
    assert "Could not grade: endpoint returned HTTP 500 after 3 retries" in result.stdout
    assert "Rate how well you knew it yourself" in result.stdout
    assert "(x is not one of the choices)" in result.stdout
    assert "Saved: Good (self-rated 4)" in result.stdout
    (attempt,) = attempts(grader_home)
    assert (attempt.verdict, attempt.self_rating, attempt.rating) == ("ungraded", 4, "good")


def test_ungraded_skip_keeps_the_schedule(fake: FakeGrader, deck: Path, grader_home: Path) -> None:
    fake.queue(ungraded())
    result = runner.invoke(app, ["practice", str(deck)], input="a\n\ns\nq\n")
    assert result.exit_code == 0
    assert "Saved; the card keeps its schedule." in result.stdout
    (attempt,) = attempts(grader_home)
    assert attempt.rating is None and attempt.state_after is None


def test_empty_first_line_is_i_dont_know(fake: FakeGrader, deck: Path, grader_home: Path) -> None:
    result = runner.invoke(app, ["practice", str(deck)], input="\n\nq\n")
    assert result.exit_code == 0
    assert fake.calls == []
    assert "INCORRECT  score 0.00" in result.stdout and "No answer given" in result.stdout
    (attempt,) = attempts(grader_home)
    assert (attempt.answer, attempt.rating) == ("", "again")


@pytest.mark.parametrize("keys", ["q\n", "", "answer\n\n\n"])
def test_q_or_end_of_input_ends_cleanly(fake: FakeGrader, deck: Path, keys: str) -> None:
    result = runner.invoke(app, ["practice", str(deck)], input=keys)
    assert result.exit_code == 0
    assert "Session over" in result.stdout
    assert result.stderr.count("error") == 0


@pytest.mark.parametrize("keys", ["answer\n\n", "answer\n\nq\n"])
def test_quitting_at_the_rating_prompt_keeps_the_graded_attempt(
    fake: FakeGrader, deck: Path, grader_home: Path, keys: str
) -> None:
    result = runner.invoke(app, ["practice", str(deck), "--json"], input=keys)
    assert result.exit_code == 0
    (attempt,) = attempts(grader_home)
    assert attempt.rating == "good"
    assert json.loads(result.stdout)["data"]["answered"] == 1


def test_limits_and_tags(fake: FakeGrader, deck: Path) -> None:
    result = runner.invoke(app, ["practice", str(deck), "--tag", "data"], input="q\n")
    assert "1 card(s): 0 due, 1 new" in result.stdout and "Question 2?" in result.stdout
    result = runner.invoke(app, ["practice", str(deck), "--max", "2"], input="q\n")
    assert "2 card(s)" in result.stdout
    result = runner.invoke(app, ["practice", str(deck), "--new", "0"], input="q\n")
    assert result.exit_code == 0
    assert result.stdout.strip() == (
        "Nothing to practise: no card is due, and --new 0 leaves out the 3 new card(s)."
    )


def test_nothing_to_practise_says_why(fake: FakeGrader, deck: Path) -> None:
    result = runner.invoke(app, ["practice", str(deck), "--tag", "nope", "--tag", "x"])
    assert result.exit_code == 0
    assert result.stdout.strip() == (
        "Nothing to practise: no card carries the tag nope or x (tags in these decks: data, ops)."
    )
    fake.queue(*(make_grade(1.0) for _ in range(3)))
    answered = runner.invoke(app, ["practice", str(deck)], input="a\n\n\n" * 3)
    assert answered.exit_code == 0, answered.stderr
    result = runner.invoke(app, ["practice", str(deck)])
    assert result.stdout.startswith("Nothing to practise: no card is due; the next one is due in")


def test_json_summary_on_stdout_dialogue_on_stderr(fake: FakeGrader, deck: Path) -> None:
    result = runner.invoke(app, ["practice", str(deck), "--json"], input="ans\n\n\nq\n")
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert (data["version"], data["command"]) == (1, "practice")
    assert data["data"]["answered"] == 1
    assert data["data"]["verdicts"] == {"correct": 1}
    assert data["data"]["attempts"][0]["card_id"] == "c1"
    assert "Question 1?" in result.stderr


def test_an_answer_typed_in_latin1_is_kept(fake: FakeGrader, deck: Path, grader_home: Path) -> None:
    fake.queue(make_grade(0.5))
    result = runner.invoke(app, ["practice", str(deck)], input=b"caf\xe9 au lait\n\n\nq\n")
    assert result.exit_code == 0, result.stderr
    (attempt,) = attempts(grader_home)
    assert attempt.answer == "caf\ufffd au lait"


def test_bad_input_is_one_line(fake: FakeGrader, tmp_path: Path, deck: Path) -> None:
    result = runner.invoke(app, ["practice", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {tmp_path / 'missing.yaml'}: no such file"
    ]
    result = runner.invoke(app, ["practice", str(deck), "--grader", "gpt"])
    assert result.exit_code == 2  # usage, as for `grader grade --grader gpt`
    assert "--grader must be auto, offline or llm" in result.stderr


def test_stats_after_a_session(fake: FakeGrader, deck: Path) -> None:
    fake.queue(make_grade(0.9), make_grade(0.1))
    runner.invoke(app, ["practice", str(deck)], input="a\n\n\nb\n\n\nq\n")
    result = runner.invoke(app, ["stats", str(deck), "--json"])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)["data"]
    assert (data["cards"], data["new"], data["attempts"]) == (3, 1, 2)
    assert data["due_today"] == 2 and data["reviewed_today"] == 2
    assert data["accuracy"] == 0.5
    assert {row["tag"]: row["accuracy"] for row in data["by_tag"]} == {"data": 0.0, "ops": 0.5}
    assert [m["card_id"] for m in data["most_missed"]] == ["c2"]
    human = runner.invoke(app, ["stats", str(deck)])
    assert human.exit_code == 0
    assert "Due today" in human.stdout and "Most missed" in human.stdout
    assert "Question 2?" in human.stdout
    everything = runner.invoke(app, ["stats", "--json"])
    assert json.loads(everything.stdout)["data"]["decks"] == ["Test deck"]


def test_stats_with_no_history(deck: Path) -> None:
    result = runner.invoke(app, ["stats"])
    assert result.exit_code == 0
    assert "(no practice yet)" in result.stdout


def test_a_grader_that_cannot_load_is_one_error_line(
    deck: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import grader.graders.factory as factory

    def broken(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError("model.safetensors is missing")

    monkeypatch.setattr(factory, "make_grader", broken)
    result = runner.invoke(app, ["practice", str(deck), "--grader", "offline"], input="q\n")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: could not load the offline grader: model.safetensors is missing"
    )
    assert "Traceback" not in result.stderr


def test_practice_gives_the_grader_every_card_of_its_decks(
    tmp_path: Path, deck: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other.yaml"
    save_deck(other, Deck(name="Other deck", cards=cards(2)))
    seen: list[list[str]] = []

    def build(*args: Any) -> FakeGrader:
        seen.append([card.id for card in args[4]])
        return FakeGrader()

    monkeypatch.setattr(practice_cli, "build_grader", build)
    result = runner.invoke(app, ["practice", str(deck), str(other)], input="q\n")
    assert result.exit_code == 0, result.stderr
    assert seen == [["c1", "c2", "c3", "c1", "c2"]]
