"""A GRADER_HOME that cannot hold grader's files is one error line, whatever the command."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from grader.cli import app

REPO = Path(__file__).resolve().parent.parent
DECK = str(REPO / "decks" / "mlops-foundations.yaml")
EVAL = str(REPO / "evals" / "injection.jsonl")
LLM_GRADE = [
    "grade",
    DECK,
    "ce5f5e35bab",
    "x",
    "--grader",
    "llm",
    "--base-url",
    "http://127.0.0.1:9/v1",
]


@pytest.mark.parametrize(
    "args",
    [
        ["stats", DECK],
        ["practice", DECK, "--grader", "offline"],
        LLM_GRADE,
    ],
)
def test_a_file_as_grader_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    home = tmp_path / "afile"
    home.write_text("not a directory\n", encoding="utf-8")
    monkeypatch.setenv("GRADER_HOME", str(home))
    result = CliRunner().invoke(app, args, input="q\n")
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: {home}: is not a directory; set GRADER_HOME to a directory you can write"
    )
    assert home.read_text(encoding="utf-8") == "not a directory\n"


def test_eval_with_a_file_as_run_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("", encoding="utf-8")
    result = CliRunner().invoke(
        app, ["eval", EVAL, "--grader", "offline", "--run-dir", str(blocker)]
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {blocker}: is not a directory"


def test_a_corrupt_call_log_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "llm.sqlite3").write_bytes(b"\x13garbage, not SQLite" * 300)
    monkeypatch.setenv("GRADER_HOME", str(home))
    result = CliRunner().invoke(
        app,
        LLM_GRADE,
    )
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: {home / 'llm.sqlite3'}: not a usable database (file is not a database); "
        "move it aside to start afresh"
    )
