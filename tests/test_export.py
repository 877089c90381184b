"""Export: CSV that imports back, and Anki packages whose note GUIDs derive from card ids."""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile
from pathlib import Path

import pytest

from grader.deckfile import load_deck, save_deck
from grader.errors import InputError
from grader.export import (
    deck_package_bytes,
    export_deck,
    markdown_to_html,
    note_guid,
    stable_anki_id,
)
from grader.importers.into_deck import import_into_deck
from grader.models import Card, Deck

REPO_ROOT = Path(__file__).resolve().parent.parent
SEED_DECK = REPO_ROOT / "decks" / "mlops-pipeline.yaml"


def _notes(apkg: bytes, tmp_path: Path) -> tuple[list[tuple[str, list[str], str]], dict[str, str]]:
    """(guid, fields, tags) of every note, and the collection's models/decks JSON."""
    with zipfile.ZipFile(io.BytesIO(apkg)) as archive:
        assert "collection.anki2" in archive.namelist()
        database = tmp_path / "collection.anki2"
        database.write_bytes(archive.read("collection.anki2"))
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT guid, flds, tags FROM notes ORDER BY id").fetchall()
        models, decks = connection.execute("SELECT models, decks FROM col").fetchone()
        cards = connection.execute("SELECT count(*) FROM cards").fetchone()[0]
    assert cards == len(rows)
    notes = [(guid, fields.split("\x1f"), tags) for guid, fields, tags in rows]
    return notes, {"models": models, "decks": decks}


def test_apkg_holds_every_card_with_guids_from_card_ids(tmp_path: Path) -> None:
    deck = load_deck(SEED_DECK).deck
    out = tmp_path / "pipeline.apkg"
    result = export_deck(SEED_DECK, "apkg", out)
    assert (result.cards, result.format, result.path) == (69, "apkg", out.as_posix())
    notes, collection = _notes(out.read_bytes(), tmp_path)
    assert len(notes) == 69
    assert [n[0] for n in notes] == [note_guid(card.id) for card in deck.cards]
    assert [n[1][3] for n in notes] == [card.id for card in deck.cards]
    assert len({n[0] for n in notes}) == 69
    assert str(stable_anki_id("deck", deck.name)) in json.loads(collection["decks"])
    assert str(stable_anki_id("model", deck.name)) in json.loads(collection["models"])
    first = notes[1][1]
    assert first[1].startswith("<ul><li>Define business goal</li>")
    assert first[2] == "MLOps is about running this loop properly."


def test_edited_card_keeps_its_guid(tmp_path: Path) -> None:
    deck = Deck(
        name="D",
        cards=[Card(id="a1", question="Q?", answer="A", tags=["two words"])],
    )
    before, _ = _notes(deck_package_bytes(deck), tmp_path)
    edited = deck.model_copy(
        update={"cards": [deck.cards[0].model_copy(update={"question": "Q edited?"})]}
    )
    after, _ = _notes(deck_package_bytes(edited), tmp_path)
    assert before[0][0] == after[0][0] == note_guid("a1")
    assert after[0][1][0] == "Q edited?"
    assert after[0][2].strip() == "two_words"
    assert stable_anki_id("deck", "D") == stable_anki_id("deck", "D") != stable_anki_id("deck", "E")
    assert (1 << 30) <= stable_anki_id("model", "D") < (1 << 31)


def test_markdown_subset_to_html() -> None:
    assert markdown_to_html("To manage:\n- **Lots** of data\n- <b>x</b>\nafter") == (
        "To manage:<ul><li><b>Lots</b> of data</li><li>&lt;b&gt;x&lt;/b&gt;</li></ul>after"
    )
    assert markdown_to_html("a\nb `c`") == "a<br>b <code>c</code>"


def test_csv_export_reimports_as_the_same_cards(tmp_path: Path) -> None:
    out = tmp_path / "pipeline.csv"
    export_deck(SEED_DECK, "csv", out)
    assert out.read_text(encoding="utf-8").splitlines()[0] == "id,front,back,footnote,tags"
    again = import_into_deck(out, tmp_path / "copy.yaml")
    assert again.parsed == 69 and again.added == 69
    original = load_deck(SEED_DECK).deck.cards
    copied = load_deck(tmp_path / "copy.yaml").deck.cards
    assert [(c.id, c.question, c.answer, c.footnote) for c in copied] == [
        (c.id, c.question, c.answer, c.footnote) for c in original
    ]
    before = SEED_DECK.read_bytes()
    same = import_into_deck(out, SEED_DECK, dry_run=True)
    assert (same.added, len(same.duplicates)) == (0, 69)
    assert SEED_DECK.read_bytes() == before


def test_export_defaults_and_bad_input(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    deck_path = tmp_path / "mine.yaml"
    save_deck(deck_path, Deck(name="Mine", cards=[Card(id="x", question="q", answer="a")]))
    assert export_deck(deck_path, "csv").path == "mine.csv"
    assert (tmp_path / "mine.csv").exists()
    with pytest.raises(InputError, match="unknown export format 'pdf'"):
        export_deck(deck_path, "pdf")
    with pytest.raises(InputError, match="is a directory"):
        export_deck(deck_path, "apkg", tmp_path)
    with pytest.raises(InputError, match="no such file"):
        export_deck(tmp_path / "nope.yaml", "csv")
