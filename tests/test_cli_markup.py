"""Text from user files is printed as typed, never as rich markup (`[b]`) or emoji (`:100:`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eval_fakes import FakeGrader, record, write_dataset
from fakes import FakeGrader as FakeCardGrader
from fakes import cards, make_grade
from typer.testing import CliRunner

import grader.cli.practice as practice_cli
from grader.cli import app
from grader.deckfile import save_deck
from grader.models import Card, Deck

runner = CliRunner()


def _assert_literal(result: Any, *texts: str) -> None:
    assert result.exit_code == 0, result.stderr
    assert "Traceback" not in result.stderr and "MarkupError" not in result.stderr
    for text in texts:
        assert text in result.stdout, text
    assert "💯" not in result.stdout


def test_eval_tables_show_splits_kinds_and_dataset_names_literally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("grader.graders.factory.make_grader", lambda *a, **k: FakeGrader())
    rows: list[dict[str, Any] | str] = [
        record(0, "right", 4, split="[/]", kind="[red]x"),
        record(1, "nope", 0, split="[/]", kind="a:100:b"),
        record(2, "half", 2, split="plain", kind="[red]x"),
    ]
    first = write_dataset(tmp_path / "[bold]one.jsonl", rows)
    second = write_dataset(tmp_path / "two.jsonl", rows)
    result = runner.invoke(
        app,
        ["eval", str(first), str(second), "--bootstrap", "0", "--no-report"],
    )
    _assert_literal(result, "[/]", "[red]x", "a:100:b", "[bold]one")
    assert "per split" in result.stdout and "per kind" in result.stdout


def test_eval_compare_prints_response_keys_literally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The key of line 100 is `d:100`, printed as `d:100: ...`: `:100:` is an emoji code.
    rows: list[dict[str, Any] | str] = [record(i, "right", 4) for i in range(99)]
    rows.append(record(99, "half", 2))
    data = write_dataset(tmp_path / "d.jsonl", rows)
    monkeypatch.setattr("grader.graders.factory.make_grader", lambda *a, **k: FakeGrader())
    runs = [str(tmp_path / "a"), str(tmp_path / "b")]
    args = ["eval", str(data), "--bootstrap", "0", "--no-report", "--run-dir"]
    assert runner.invoke(app, [*args, runs[0]]).exit_code == 0

    class Harsher(FakeGrader):
        def _grade(self, answer: str) -> Any:
            return super()._grade(answer.replace("half", "nope"))

    monkeypatch.setattr("grader.graders.factory.make_grader", lambda *a, **k: Harsher())
    assert runner.invoke(app, [*args, runs[1]]).exit_code == 0
    result = runner.invoke(app, ["eval", "compare", *runs, "--bootstrap", "0"])
    _assert_literal(result, "1 responses changed verdict", "  d:100: partial 0.500 -> incorrect")


def test_deck_show_prints_card_text_literally(tmp_path: Path) -> None:
    path = tmp_path / "deck.yaml"
    card = Card(id="c1", question="What is [bold]x[/bold] :100:?", answer="[red]y :100:")
    save_deck(path, Deck(name="[red]Deck :100:", cards=[card]))
    table = runner.invoke(app, ["deck", "show", str(path)])
    _assert_literal(table, "[red]Deck :100:", "What is [bold]x[/bold] :100:?")
    one = runner.invoke(app, ["deck", "show", str(path), "c1"])
    _assert_literal(one, "What is [bold]x[/bold] :100:?", "[red]y :100:")


def test_import_report_prints_paths_and_deck_names_literally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    source = tmp_path / "[red]cards:100:.csv"
    source.write_text("front,back\nq1,a1\nq2,a2\n", encoding="utf-8")
    result = runner.invoke(
        app, ["import", str(source), "--deck", "d.yaml", "--name", "[bold]Basics :100:"]
    )
    _assert_literal(
        result,
        f"{source} (csv): 2 cards",
        "added 2 cards to new deck d.yaml ([bold]Basics :100:)",
    )


def test_practice_and_stats_print_deck_names_literally(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grader = FakeCardGrader().queue(make_grade(0.9))
    monkeypatch.setattr(practice_cli, "build_grader", lambda *args: grader)
    path = tmp_path / "deck.yaml"
    save_deck(path, Deck(name="[red]Deck :100:", cards=cards(1)))
    practice = runner.invoke(app, ["practice", str(path)], input="an answer\n\n\nq\n")
    _assert_literal(practice, "[1/1] [red]Deck :100: · new")
    stats = runner.invoke(app, ["stats", str(path)])
    _assert_literal(stats, "[red]Deck :100:")
