"""Two reviewers in two processes approving overlapping sets: every approval lands exactly once."""

from __future__ import annotations

import multiprocessing
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

from grader.deckfile import check_deck, load_deck
from grader.expand.proposals import ProposalSet, load_proposals, save_proposals
from grader.models import CardProposal

DECKS = Path(__file__).resolve().parent.parent / "decks"
COUNT = 40


def _review(deck: str, ids: list[str], reviewer: str, barrier: Any) -> None:
    from grader.review import approve, reject

    barrier.wait()
    for pid in ids:
        # One decision per call, as two people clicking through the queue would.
        approve(Path(deck), [pid], reviewer)
    reject(Path(deck), ids[:3], reviewer, reason="late second thoughts")


def test_two_processes_never_lose_or_duplicate_an_approval(tmp_path: Path) -> None:
    deck = tmp_path / "deck.yaml"
    shutil.copy(DECKS / "mlops-foundations.yaml", deck)
    proposals = [
        CardProposal(
            id=f"p{i:02d}",
            question=f"Generated question number {i}?",
            answer=f"Answer {i}",
            strategy="reverse",
            created_at="2026-01-01T00:00:00+00:00",
        )
        for i in range(COUNT)
    ]
    save_proposals(deck, ProposalSet(deck=deck.name, proposals=proposals))
    before = len(load_deck(deck).deck.cards)
    ids = [p.id for p in proposals]
    first = ids[: COUNT * 3 // 4]
    second = list(reversed(ids[COUNT // 4 :]))  # overlaps the middle half, in the other order

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    workers = [
        context.Process(target=_review, args=(str(deck), first, "ada", barrier)),
        context.Process(target=_review, args=(str(deck), second, "bob", barrier)),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0

    cards = load_deck(deck).deck.cards
    from_proposals = Counter(
        c.provenance.proposal_id for c in cards if c.provenance and c.provenance.proposal_id
    )
    assert set(from_proposals) == set(ids)
    assert set(from_proposals.values()) == {1}
    assert len(cards) == before + COUNT
    store = load_proposals(deck)
    assert {p.status for p in store.proposals} == {"approved"}
    by_card = {c.id: c for c in cards}
    for proposal in store.proposals:
        assert proposal.card_id is not None
        card = by_card[proposal.card_id]
        assert card.provenance is not None
        assert card.provenance.proposal_id == proposal.id
        assert card.provenance.approved_by == proposal.reviewed_by
    assert check_deck(deck)[1] == []
