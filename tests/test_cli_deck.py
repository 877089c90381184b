"""`grader import`, `grader export` and `grader deck ...` via the CLI: stdout, stderr, exits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grader.cli import app
from grader.deckfile import load_deck, save_deck
from grader.models import Card, Deck

SEEDS = Path(__file__).resolve().parent.parent.parent / "shared" / "seeds"
SEED_TERMDEF = SEEDS / "000_5e00d002c2771d2b.txt"
SEED_NUMBERED = SEEDS / "001_cb5fa148d1065309.txt"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in stderr
    return lines[0]


def test_import_numbered_seed_reports_cards_footnotes_and_the_skip(runner: CliRunner) -> None:
    result = runner.invoke(app, ["import", str(SEED_NUMBERED), "--deck", "scratch.yaml"])
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert "69 cards, 69 with footnotes, 1 skipped" in out
    assert "added 69 cards to new deck scratch.yaml (ML OPs Flashcards)" in out
    assert f"skipped {SEED_NUMBERED}:5: card 1 is empty" in out
    assert len(load_deck(Path("scratch.yaml")).deck.cards) == 69


def test_import_termdef_seed_warns_on_stderr_and_reimport_adds_nothing(runner: CliRunner) -> None:
    first = runner.invoke(app, ["import", str(SEED_TERMDEF), "--deck", "d.yaml"])
    assert first.exit_code == 0
    assert "24 cards" in first.stdout and "added 24 cards" in first.stdout
    assert first.stderr == (
        f"warning: {SEED_TERMDEF}: the header announces 27 cards but the file holds 24\n"
    )
    second = runner.invoke(app, ["import", str(SEED_TERMDEF), "--deck", "d.yaml"])
    assert second.exit_code == 0
    assert "added 0 cards" in second.stdout
    assert "24 already in the deck (matched on normalised question text)" in second.stdout


def test_import_name_tag_and_dry_run(runner: CliRunner) -> None:
    result = runner.invoke(
        app,
        [
            "import",
            str(SEED_TERMDEF),
            "-d",
            "d.yaml",
            "--name",
            "Basics",
            "-t",
            "mlops",
            "--dry-run",
        ],
    )
    assert result.exit_code == 0
    assert "would add 24 cards" in result.stdout
    assert not Path("d.yaml").exists()
    result = runner.invoke(app, ["import", str(SEED_TERMDEF), "-d", "d.yaml", "--name", "Basics"])
    assert load_deck(Path("d.yaml")).deck.name == "Basics"


def _broken_inputs(tmp: Path) -> list[tuple[list[str], str]]:
    (tmp / "bad.csv").write_text("front,back\nq,a,extra\n", encoding="utf-8")
    (tmp / "latin.txt").write_bytes(b"T\n(1 cards)\nq\ncaf\xe9\n")
    (tmp / "adir").mkdir()
    return [
        (["bad.csv"], "error: bad.csv:2: 3 fields, but the header has 2"),
        (["latin.txt"], "error: latin.txt:4: not UTF-8 text (byte 0xe9)"),
        (["missing.txt"], "error: missing.txt: no such file"),
        (["adir"], "error: adir: is a directory, not a file"),
        ([str(SEED_TERMDEF), "--format", "xml"], "error: unknown format 'xml'"),
        (["bad.csv", "--format", "numbered"], "error: bad.csv:2: expected a card number"),
    ]


def test_bad_import_input_is_one_line_exit_1_and_the_deck_untouched(
    runner: CliRunner, in_tmp: Path
) -> None:
    assert runner.invoke(app, ["import", str(SEED_TERMDEF), "-d", "d.yaml"]).exit_code == 0
    before = Path("d.yaml").read_bytes()
    for args, expected in _broken_inputs(in_tmp):
        result = runner.invoke(app, ["import", *args, "--deck", "d.yaml"])
        assert result.exit_code == 1, (args, result.stdout, result.stderr)
        assert _one_error_line(result.stderr).startswith(expected), result.stderr
        assert result.stdout == ""
        assert Path("d.yaml").read_bytes() == before
    assert sorted(p.name for p in in_tmp.iterdir() if p.name.endswith(".tmp")) == []


def test_import_into_a_directory_is_refused(runner: CliRunner) -> None:
    Path("adir").mkdir()
    result = runner.invoke(app, ["import", str(SEED_TERMDEF), "--deck", "adir"])
    assert result.exit_code == 1
    assert _one_error_line(result.stderr) == "error: adir: is a directory, not a deck file"
    assert not Path(".adir.lock").exists()


def test_import_into_a_deck_with_a_syntax_error(runner: CliRunner) -> None:
    Path("d.yaml").write_text("name: d\ncards:\n- id: a\n  question: [x\n", encoding="utf-8")
    result = runner.invoke(app, ["import", str(SEED_TERMDEF), "--deck", "d.yaml"])
    assert result.exit_code == 1
    assert _one_error_line(result.stderr).startswith("error: d.yaml:")
    assert "YAML syntax error" in result.stderr
    assert Path("d.yaml").read_text(encoding="utf-8").startswith("name: d\n")


def test_export_csv_and_apkg(runner: CliRunner) -> None:
    runner.invoke(app, ["import", str(SEED_NUMBERED), "-d", "p.yaml"])
    result = runner.invoke(app, ["export", "p.yaml", "--format", "apkg", "-o", "out/p.apkg"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "wrote 69 cards to out/p.apkg (apkg)\n"
    assert Path("out/p.apkg").stat().st_size > 0
    result = runner.invoke(app, ["export", "p.yaml"])
    assert result.stdout == "wrote 69 cards to p.csv (csv)\n"
    result = runner.invoke(app, ["export", "p.yaml", "--format", "pdf"])
    assert result.exit_code == 1
    assert (
        _one_error_line(result.stderr)
        == "error: unknown export format 'pdf' (choose from csv, apkg)"
    )


def _two_decks() -> None:
    Path("decks").mkdir()
    save_deck(
        Path("decks/a.yaml"),
        Deck(
            name="Alpha [beta]",
            cards=[
                Card(
                    id="a1",
                    question="What is **drift**?",
                    answer="- inputs\n- change",
                    footnote="Watch it.",
                    tags=["mlops"],
                ),
                Card(id="a2", question="Q2", answer="A2"),
            ],
        ),
    )
    save_deck(
        Path("decks/b.yaml"), Deck(name="Beta", cards=[Card(id="b1", question="q", answer="a")])
    )


def test_deck_list_defaults_to_decks_dir(runner: CliRunner) -> None:
    _two_decks()
    result = runner.invoke(app, ["deck", "list"])
    assert result.exit_code == 0
    lines = [line.split() for line in result.stdout.splitlines()]
    assert lines[0] == ["deck", "name", "cards"]
    assert lines[1] == ["decks/a.yaml", "Alpha", "[beta]", "2"]
    assert lines[2] == ["decks/b.yaml", "Beta", "1"]
    result = runner.invoke(app, ["deck", "list", "nowhere"])
    assert result.exit_code == 1
    assert _one_error_line(result.stderr) == "error: nowhere: no such directory"


def test_deck_show_deck_and_card(runner: CliRunner) -> None:
    _two_decks()
    result = runner.invoke(app, ["deck", "show", "decks/a.yaml"])
    assert result.exit_code == 0
    assert "Alpha [beta]" in result.stdout and "(2 cards)" in result.stdout
    assert "a1" in result.stdout and "What is **drift**?" in result.stdout
    result = runner.invoke(app, ["deck", "show", "decks/a.yaml", "a1"])
    assert result.exit_code == 0
    for text in ("Question", "drift", "Answer", "inputs", "Footnote", "Watch it.", "Tags: mlops"):
        assert text in result.stdout
    result = runner.invoke(app, ["deck", "show", "decks/a.yaml", "zz"])
    assert result.exit_code == 1
    assert _one_error_line(result.stderr) == "error: decks/a.yaml: no card with id 'zz'"


def test_deck_show_keeps_a_cloze_blank_and_line_breaks(runner: CliRunner, tmp_path: Path) -> None:
    deck = tmp_path / "cloze.yaml"
    save_deck(
        deck,
        Deck(
            name="Cloze",
            cards=[
                Card(
                    id="c1",
                    question="Fill in the **missing** step:",
                    answer="- Get data\n- ____\n- Deploy `model`",
                    footnote="Line one\nline two",
                )
            ],
        ),
    )
    result = runner.invoke(app, ["deck", "show", str(deck), "c1"])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1:] == [
        "Question",
        "Fill in the missing step:",
        "Answer",
        "• Get data",
        "• ____",  # a full Markdown renderer drew a horizontal rule here
        "• Deploy model",
        "Footnote",
        "Line one",
        "line two",
    ]


def test_deck_check_passes_on_the_committed_seed_decks(runner: CliRunner) -> None:
    repo_decks = Path(__file__).resolve().parent.parent / "decks"
    paths = [str(repo_decks / "mlops-foundations.yaml"), str(repo_decks / "mlops-pipeline.yaml")]
    result = runner.invoke(app, ["deck", "check", *paths])
    assert result.exit_code == 0, result.stdout
    assert result.stdout.splitlines() == [
        f"{paths[0]}: ok (24 cards)",
        f"{paths[1]}: ok (69 cards)",
    ]
    assert result.stderr == ""


def test_deck_check_lists_every_problem_and_exits_1(runner: CliRunner) -> None:
    Path("bad.yaml").write_text(
        "name: d\ncards:\n- id: a\n  question: q\n  answer: ''\n"
        "- id: a\n  question: ''\n  answer: x\n",
        encoding="utf-8",
    )
    Path("latin1.yaml").write_bytes(b"name: d\ncards:\n- id: b\n  question: caf\xe9\n  answer: x\n")
    result = runner.invoke(app, ["deck", "check", "bad.yaml", "latin1.yaml"])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "bad.yaml:5: card a: answer: Value error, must not be empty",
        "bad.yaml:6: duplicate card id 'a' (first at line 3)",
        "bad.yaml:7: card a: question: Value error, must not be empty",  # after the duplicate
        "latin1.yaml:4: not UTF-8 text (byte 0xe9)",
    ]
    assert result.stderr == "4 problems found\n"
    result = runner.invoke(app, ["deck", "check", "nope.yaml"])
    assert result.exit_code == 1
    assert _one_error_line(result.stderr) == "error: nope.yaml: no such file"


def test_deck_check_json(runner: CliRunner) -> None:
    Path("bad.yaml").write_text("name: [\n", encoding="utf-8")
    result = runner.invoke(app, ["deck", "check", "bad.yaml", "--json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)["data"]
    assert data[0]["ok"] is False
    assert data[0]["problems"][0]["path"] == "bad.yaml"
    assert data[0]["problems"][0]["message"].startswith("YAML syntax error")
