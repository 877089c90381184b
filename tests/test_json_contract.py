"""The `--json` envelope is a contract scripts depend on: `{"version", "command", "data"}`.

Changing a shape below is a breaking change: bump grader.render.JSON_VERSION and say so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from grader.cli import app
from grader.deckfile import save_deck
from grader.models import Card, Deck, Provenance
from grader.render import JSON_VERSION, envelope

SEED_TERMDEF = (
    Path(__file__).resolve().parent.parent.parent / "shared" / "seeds" / "000_5e00d002c2771d2b.txt"
)
CARD_KEYS = {
    "id",
    "question",
    "answer",
    "footnote",
    "tags",
    "rubric",
    "rubric_source",
    "rubric_answer",
    "rubric_fingerprint",
    "provenance",
}
IMPORT_KEYS = {
    "source",
    "deck_path",
    "deck_name",
    "deck_created",
    "format",
    "title",
    "announced",
    "parsed",
    "added",
    "footnotes",
    "added_ids",
    "duplicates",
    "skipped",
    "warnings",
}


@pytest.fixture(autouse=True)
def deck_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    card = Card(
        id="a1",
        question="Q?",
        answer="A",
        footnote="F",
        tags=["t"],
        provenance=Provenance(kind="manual", created_at="2026-01-01T00:00:00+00:00"),
    )
    save_deck(tmp_path / "decks" / "d.yaml", Deck(name="D", cards=[card]))
    return tmp_path


def _run(args: list[str], exit_code: int = 0) -> dict[str, Any]:
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == exit_code, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    assert set(document) == {"version", "command", "data"}
    assert document["version"] == JSON_VERSION == 1
    return document


def test_envelope_shape() -> None:
    assert envelope("x", {"a": Card(id="i", question="q", answer="a")}) == {
        "version": 1,
        "command": "x",
        "data": {
            "a": {
                **dict.fromkeys(CARD_KEYS),
                "id": "i",
                "question": "q",
                "answer": "a",
                "tags": [],
                "rubric": [],
            }
        },
    }


def test_import_envelope() -> None:
    document = _run(["import", str(SEED_TERMDEF), "--deck", "decks/new.yaml"])
    assert document["command"] == "import"
    data = document["data"]
    assert set(data) == IMPORT_KEYS
    assert (data["parsed"], data["added"], data["announced"], data["deck_created"]) == (
        24,
        24,
        27,
        True,
    )
    again = _run(["import", str(SEED_TERMDEF), "--deck", "decks/new.yaml"])["data"]
    assert again["added"] == 0
    assert set(again["duplicates"][0]) == {"line", "card_id"}


def test_export_envelope() -> None:
    document = _run(["export", "decks/d.yaml", "--format", "csv", "-o", "d.csv"])
    assert document == {
        "version": 1,
        "command": "export",
        "data": {"path": "d.csv", "format": "csv", "deck_name": "D", "cards": 1},
    }


def test_deck_list_envelope() -> None:
    document = _run(["deck", "list"])
    assert document["command"] == "deck list"
    assert document["data"] == [{"path": "decks/d.yaml", "name": "D", "cards": 1, "problem": None}]


def test_deck_show_envelopes() -> None:
    whole = _run(["deck", "show", "decks/d.yaml"])
    assert whole["command"] == "deck show"
    assert set(whole["data"]) == {"path", "deck"}
    assert set(whole["data"]["deck"]) == {"name", "description", "cards"}
    assert set(whole["data"]["deck"]["cards"][0]) == CARD_KEYS
    one = _run(["deck", "show", "decks/d.yaml", "a1"])
    assert set(one["data"]) == {"path", "card"}
    assert one["data"]["card"]["provenance"]["kind"] == "manual"


def test_deck_check_envelope() -> None:
    ok = _run(["deck", "check", "decks/d.yaml"])
    assert ok["command"] == "deck check"
    assert ok["data"] == [
        {"path": "decks/d.yaml", "ok": True, "cards": 1, "problems": [], "notes": []}
    ]
    Path("decks/bad.yaml").write_text("name: d\ncards: 3\n", encoding="utf-8")
    bad = _run(["deck", "check", "decks/bad.yaml"], exit_code=1)
    assert bad["data"] == [
        {
            "path": "decks/bad.yaml",
            "ok": False,
            "cards": None,
            "problems": [
                {"path": "decks/bad.yaml", "line": 2, "message": "`cards` must be a list"}
            ],
            "notes": [],
        }
    ]
