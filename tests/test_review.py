"""The proposals store and the review library: approve, reject, idempotency, edits."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.deckfile import check_deck, load_deck
from grader.errors import InputError, NotFoundError
from grader.expand.proposals import (
    ProposalSet,
    deck_lock,
    dump_proposals,
    load_proposals,
    lock_path,
    proposals_path,
    save_proposals,
)
from grader.models import CardProposal, ProposalCheck
from grader.review import (
    approve,
    editable_text,
    parse_edit,
    reject,
    reviewer_name,
    save_edit,
)

DECKS = Path(__file__).resolve().parent.parent / "decks"
NOW = "2026-01-01T00:00:00+00:00"


def make(pid: str, question: str, answer: str = "An answer", **fields: object) -> CardProposal:
    return CardProposal.model_validate(
        {
            "id": pid,
            "question": question,
            "answer": answer,
            "strategy": "reverse",
            "created_at": NOW,
            **fields,
        }
    )


@pytest.fixture
def deck(tmp_path: Path) -> Path:
    path = tmp_path / "decks" / "pipeline.yaml"
    path.parent.mkdir()
    shutil.copy(DECKS / "mlops-pipeline.yaml", path)
    store = ProposalSet(
        deck=path.name,
        proposals=[
            make("p1", "Which term means putting the model into real use?", "deployment"),
            make(
                "p2",
                "Fill in the blank: ____ is a checklist for data projects.",
                "CRISP-DM",
                footnote="From the card",
                tags=["crisp"],
                checks=[ProposalCheck(name="duplicate", outcome="flag", reason="close")],
            ),
            make("p3", "Which item is missing?\n\n- a\n- ____", "- b"),
        ],
    )
    save_proposals(path, store)
    return path


def test_paths_beside_the_deck(tmp_path: Path) -> None:
    deck = tmp_path / "decks" / "x.yaml"
    assert proposals_path(deck) == tmp_path / "decks" / "x.proposals.yaml"
    assert lock_path(deck) == tmp_path / "decks" / ".x.yaml.lock"


def test_store_round_trips_byte_for_byte(deck: Path) -> None:
    text = proposals_path(deck).read_text(encoding="utf-8")
    loaded = load_proposals(deck)
    assert [p.id for p in loaded.proposals] == ["p1", "p2", "p3"]
    assert loaded.require("p2").checks[0].reason == "close"
    assert dump_proposals(loaded) == text
    assert "  status: pending\n" in text and "|-\n" in text  # readable in a git diff


def test_missing_store_is_empty_and_bad_store_names_file_and_line(tmp_path: Path) -> None:
    deck = tmp_path / "d.yaml"
    assert load_proposals(deck).proposals == []
    proposals_path(deck).write_text(
        "version: 1\ndeck: d.yaml\nproposals:\n- id: p1\n  question: Q\n  answer: A\n"
        "  strategy: x\n  created_at: now\n- id: p2\n  question: Q\n  strategy: x\n"
        "  created_at: now\n",
        encoding="utf-8",
    )
    with pytest.raises(
        InputError, match=r"d\.proposals\.yaml:9: proposals\.1\.answer: Field required"
    ):
        load_proposals(deck)
    proposals_path(deck).write_text("proposals: [\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"d\.proposals\.yaml:2: YAML syntax error"):
        load_proposals(deck)


def test_approve_writes_the_card_with_provenance_once(deck: Path) -> None:
    before = len(load_deck(deck).deck.cards)
    [outcome] = approve(deck, ["p2"], "ada", now=NOW)
    assert outcome.action == "approved" and outcome.card_id
    cards = load_deck(deck).deck.cards
    assert len(cards) == before + 1
    card = cards[-1]
    assert (card.id, card.question, card.answer, card.footnote, card.tags) == (
        outcome.card_id,
        "Fill in the blank: ____ is a checklist for data projects.",
        "CRISP-DM",
        "From the card",
        ["crisp"],
    )
    assert card.provenance is not None
    assert card.provenance.model_dump(exclude_none=True) == {
        "kind": "proposed",
        "created_at": NOW,
        "strategy": "reverse",
        "proposal_id": "p2",
        "approved_by": "ada",
        "approved_at": NOW,
    }
    stored = load_proposals(deck).require("p2")
    assert (stored.status, stored.card_id, stored.reviewed_by) == ("approved", card.id, "ada")
    assert check_deck(deck)[1] == []

    [again] = approve(deck, ["p2"], "bob")
    assert again.action == "already-approved" and again.by == "ada" and again.card_id == card.id
    assert len(load_deck(deck).deck.cards) == before + 1


def test_approval_is_repaired_not_repeated_when_only_the_deck_was_written(deck: Path) -> None:
    approve(deck, ["p1"], "ada")
    store = load_proposals(deck)
    # Simulate a crash after the deck write: the proposal still says pending.
    store.replace(store.require("p1").model_copy(update={"status": "pending", "card_id": None}))
    save_proposals(deck, store)
    before = len(load_deck(deck).deck.cards)
    [outcome] = approve(deck, ["p1"], "bob")
    assert outcome.action == "already-approved"
    assert len(load_deck(deck).deck.cards) == before
    assert load_proposals(deck).require("p1").status == "approved"


def test_reject_keeps_the_proposal_with_its_reason(deck: Path) -> None:
    [outcome] = reject(deck, ["p1"], "ada", reason="too easy", now=NOW)
    assert outcome.action == "rejected"
    stored = load_proposals(deck).require("p1")
    assert (stored.status, stored.reject_reason, stored.reviewed_by, stored.reviewed_at) == (
        "rejected",
        "too easy",
        "ada",
        NOW,
    )
    [later] = approve(deck, ["p1"], "bob")
    assert later.action == "already-rejected" and "too easy" in later.message
    approve(deck, ["p3"], "ada")
    [too_late] = reject(deck, ["p3"], "bob")
    assert too_late.action == "already-approved"


def test_unknown_id_changes_nothing(deck: Path) -> None:
    deck_text = deck.read_text(encoding="utf-8")
    with pytest.raises(NotFoundError, match="no proposal 'nope'"):
        approve(deck, ["p1", "nope"], "ada")
    assert deck.read_text(encoding="utf-8") == deck_text
    assert load_proposals(deck).require("p1").status == "pending"


def test_edit_text_round_trip_and_cancel() -> None:
    original = make("p9", "Q?", "- a\n- b", footnote="F", tags=["t"])
    fields = parse_edit(editable_text(original))
    assert fields is not None
    assert (fields.question, fields.answer, fields.footnote, fields.tags) == (
        "Q?",
        "- a\n- b",
        "F",
        ["t"],
    )
    assert parse_edit("# only comments\n\n") is None
    with pytest.raises(InputError, match="question and answer must not be empty"):
        parse_edit("question: ''\nanswer: x\n")
    with pytest.raises(InputError, match=r"score: Extra inputs are not permitted"):
        parse_edit("question: q\nanswer: a\nscore: 1\n")
    for text, message in [
        ("question: [unclosed\nanswer: x\n", "line 2: YAML syntax error: expected ',' or ']'"),
        ("question: a\nquestion: b\nanswer: x\n", "line 2: duplicate key 'question'"),
    ]:
        with pytest.raises(InputError) as caught:
            parse_edit(text, origin="edit of p1")
        assert "\n" not in str(caught.value) and message in str(caught.value)


def test_save_edit_refuses_a_decided_proposal(deck: Path) -> None:
    approve(deck, ["p1"], "ada")
    edited = load_proposals(deck).require("p1").model_copy(update={"question": "New?"})
    assert save_edit(deck, edited).action == "already-approved"
    pending = load_proposals(deck).require("p2").model_copy(update={"question": "New?"})
    assert save_edit(deck, pending).action == "edited"
    assert load_proposals(deck).require("p2").question == "New?"


def test_reviewer_name_order() -> None:
    assert reviewer_name("  Ada  ", {"USER": "u"}) == "Ada"
    assert reviewer_name(None, {"USER": "u"}) == "u"


def test_lock_is_exclusive_and_reentrant_per_call(tmp_path: Path) -> None:
    import fcntl

    deck = tmp_path / "d.yaml"
    with (
        deck_lock(deck),
        open(lock_path(deck), "a+b") as other,
        pytest.raises(BlockingIOError),
    ):
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    with deck_lock(deck):
        pass


def test_a_proposal_that_cannot_become_a_card_writes_nothing(deck: Path) -> None:
    text = proposals_path(deck).read_text(encoding="utf-8")
    proposals_path(deck).write_text(text.replace("answer: deployment", "answer: ''"), "utf-8")
    before = deck.read_bytes()
    with pytest.raises(InputError, match="proposal p1 cannot become a card: answer: must not be"):
        approve(deck, ["p2", "p1"], "ada", now=NOW)
    assert deck.read_bytes() == before
    assert [p.status for p in load_proposals(deck).proposals] == ["pending"] * 3


def test_duplicate_proposal_ids_are_refused_before_any_write(deck: Path) -> None:
    path = proposals_path(deck)
    path.write_text(path.read_text(encoding="utf-8").replace("id: p2", "id: p1"), "utf-8")
    before = deck.read_bytes()
    with pytest.raises(InputError, match=r"proposals\.yaml:\d+: duplicate proposal id 'p1'"):
        approve(deck, ["p1"], "ada", now=NOW)
    assert deck.read_bytes() == before
