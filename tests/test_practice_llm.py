"""A practice session against a failing LLM endpoint: ungraded, self-rated, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import cards
from typer.testing import CliRunner

from grader.cli import app
from grader.deckfile import save_deck
from grader.history import History
from grader.models import Deck

pytest.importorskip("grader.testing.openai_server")
from grader.testing.openai_server import LoopbackOpenAIServer, Reply

SECRET = "sk-test-practice-secret-123"


def test_endpoint_failure_falls_back_to_self_rating(
    tmp_path: Path, grader_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deck = tmp_path / "deck.yaml"
    save_deck(deck, Deck(name="LLM deck", cards=cards(2)))
    grader_home.mkdir(parents=True, exist_ok=True)
    (grader_home / "config.toml").write_text("max_retries = 0\nmax_reasks = 0\n")
    with LoopbackOpenAIServer([Reply.error(500, "boom"), Reply.error(500, "boom")]) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", SECRET)
        result = CliRunner().invoke(
            app, ["practice", str(deck), "--grader", "llm"], input="my answer\n\n2\nq\n"
        )
        assert server.requests, "the session called the endpoint"
    assert result.exit_code == 0, result.stderr
    assert "UNGRADED" in result.stdout
    assert "Rate how well you knew it yourself" in result.stdout
    assert "Saved: Again (self-rated 2)" in result.stdout
    assert "Traceback" not in result.stderr
    assert SECRET not in result.stdout + result.stderr
    with History.open(grader_home) as history:
        (attempt,) = history.attempts()
    assert attempt.verdict == "ungraded" and attempt.grade.reason
    assert (attempt.self_rating, attempt.rating) == (2, "again")
    assert attempt.grade.evidence.grader == "llm"
    assert SECRET not in (grader_home / "history.db").read_bytes().decode("utf-8", "replace")
