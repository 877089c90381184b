"""Reviewing proposals: approve into the deck, reject with a reason, edit, regenerate.

Every change is one read-modify-write of the deck and its proposals file inside the deck lock,
re-reading both inside it. Approval is idempotent: a proposal already approved (by anyone, or
whose card is already in the deck) is never added twice, so two reviewers in two processes
neither lose an approval nor write a card twice.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, ValidationError

from grader import yamlfile
from grader.deckfile import load_deck, save_deck
from grader.errors import InputError, first_error
from grader.expand.checks import CheckLimits, Encoder, Prior, run_checks
from grader.expand.proposals import (
    ProposalSet,
    deck_lock,
    dump_yaml,
    load_proposals,
    proposals_path,
    save_proposals,
)
from grader.models import Card, CardProposal, Deck, Provenance, Strict, new_card_id, utc_now_iso

Action = Literal["approved", "rejected", "already-approved", "already-rejected", "edited", "added"]


class ReviewOutcome(Strict):
    """What happened to one proposal."""

    proposal_id: str
    action: Action
    """approved / rejected now, or already so (nothing written), edited, or added (regenerated)."""
    card_id: str | None = None
    """The deck card of an approved proposal."""
    by: str | None = None
    """Who made the decision (for `already-*`, who made it first)."""
    message: str = ""


class EditableFields(Strict):
    """The fields of a proposal a reviewer may edit."""

    question: str
    answer: str
    footnote: str | None = None
    tags: list[str] = Field(default_factory=list)


def reviewer_name(explicit: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """Who is reviewing: `--reviewer`, else $USER, else git's user.name, else "unknown"."""
    if explicit and explicit.strip():
        return explicit.strip()
    env = os.environ if environ is None else environ
    user = env.get("USER") or env.get("USERNAME")
    if user:
        return user
    try:
        done = subprocess.run(
            ["git", "config", "user.name"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def list_proposals(deck_path: Path, status: str | None = None) -> ProposalSet:
    """The proposals of a deck, optionally only those with `status`."""
    load_deck(deck_path)  # a missing or broken deck is reported as such, not as "no proposals"
    store = load_proposals(deck_path)
    if status is not None:
        store = store.model_copy(update={"proposals": store.with_status(status)})
    return store


def card_from_proposal(proposal: CardProposal, deck: Deck, reviewer: str, now: str) -> Card:
    """The deck card an approved proposal becomes, with its provenance."""
    taken = {c.id for c in deck.cards}
    card_id = new_card_id()
    while card_id in taken:
        card_id = new_card_id()
    return Card(
        id=card_id,
        question=proposal.question,
        answer=proposal.answer,
        footnote=proposal.footnote,
        tags=list(proposal.tags),
        provenance=Provenance(
            kind="proposed",
            created_at=now,
            strategy=proposal.strategy,
            model=proposal.model,
            prompt_hash=proposal.prompt_hash,
            proposal_id=proposal.id,
            approved_by=reviewer,
            approved_at=now,
        ),
    )


def _card_of(deck: Deck, proposal_id: str) -> Card | None:
    return next(
        (c for c in deck.cards if c.provenance and c.provenance.proposal_id == proposal_id),
        None,
    )


def approve(
    deck_path: Path, ids: Sequence[str], reviewer: str, now: str | None = None
) -> list[ReviewOutcome]:
    """Approve proposals into the deck (atomically, idempotently), in the order given."""
    stamp = now or utc_now_iso()
    with deck_lock(deck_path):
        deck = load_deck(deck_path).deck
        store = load_proposals(deck_path)
        proposals = [store.require(i) for i in dict.fromkeys(ids)]
        outcomes: list[ReviewOutcome] = []
        new_cards: list[Card] = []
        for proposal in proposals:
            existing = _card_of(deck, proposal.id)
            if proposal.status == "approved" or existing is not None:
                if proposal.status != "approved" and existing is not None:
                    # The deck was written but the proposals file was not: repair it.
                    store.replace(_approved(proposal, existing, reviewer, stamp))
                outcomes.append(
                    ReviewOutcome(
                        proposal_id=proposal.id,
                        action="already-approved",
                        card_id=proposal.card_id or (existing.id if existing else None),
                        by=proposal.reviewed_by or reviewer,
                        message="already in the deck; not added again",
                    )
                )
                continue
            if proposal.status == "rejected":
                outcomes.append(
                    ReviewOutcome(
                        proposal_id=proposal.id,
                        action="already-rejected",
                        by=proposal.reviewed_by,
                        message=f"rejected earlier: {proposal.reject_reason or 'no reason given'}",
                    )
                )
                continue
            try:
                card = card_from_proposal(proposal, deck, reviewer, stamp)
            except ValidationError as exc:  # nothing is written: the deck is saved below
                field, message = first_error(exc, "card")
                raise InputError(
                    f"proposal {proposal.id} cannot become a card: {field}: {message}",
                    path=proposals_path(deck_path),
                ) from None
            deck.cards.append(card)
            new_cards.append(card)
            store.replace(_approved(proposal, card, reviewer, stamp))
            outcomes.append(
                ReviewOutcome(
                    proposal_id=proposal.id, action="approved", card_id=card.id, by=reviewer
                )
            )
        if new_cards:
            save_deck(deck_path, deck)
        save_proposals(deck_path, store)
    return outcomes


def _approved(proposal: CardProposal, card: Card, reviewer: str, now: str) -> CardProposal:
    return proposal.model_copy(
        update={
            "status": "approved",
            "card_id": card.id,
            "reviewed_by": reviewer,
            "reviewed_at": now,
        }
    )


def reject(
    deck_path: Path,
    ids: Sequence[str],
    reviewer: str,
    reason: str | None = None,
    now: str | None = None,
) -> list[ReviewOutcome]:
    """Reject pending proposals; they stay on file so the same card is not proposed again."""
    stamp = now or utc_now_iso()
    with deck_lock(deck_path):
        deck = load_deck(deck_path).deck
        store = load_proposals(deck_path)
        proposals = [store.require(i) for i in dict.fromkeys(ids)]
        outcomes: list[ReviewOutcome] = []
        for proposal in proposals:
            if proposal.status == "approved" or _card_of(deck, proposal.id) is not None:
                outcomes.append(
                    ReviewOutcome(
                        proposal_id=proposal.id,
                        action="already-approved",
                        card_id=proposal.card_id,
                        by=proposal.reviewed_by,
                        message="already approved into the deck; edit or delete the card instead",
                    )
                )
                continue
            if proposal.status == "rejected":
                outcomes.append(
                    ReviewOutcome(
                        proposal_id=proposal.id, action="already-rejected", by=proposal.reviewed_by
                    )
                )
                continue
            store.replace(
                proposal.model_copy(
                    update={
                        "status": "rejected",
                        "reject_reason": reason,
                        "reviewed_by": reviewer,
                        "reviewed_at": stamp,
                    }
                )
            )
            outcomes.append(ReviewOutcome(proposal_id=proposal.id, action="rejected", by=reviewer))
        save_proposals(deck_path, store)
    return outcomes


def editable_text(proposal: CardProposal) -> str:
    """The YAML a reviewer edits in $EDITOR."""
    fields = EditableFields(
        question=proposal.question,
        answer=proposal.answer,
        footnote=proposal.footnote,
        tags=list(proposal.tags),
    )
    header = (
        f"# Edit proposal {proposal.id}; save and quit to re-check it. Empty the file to cancel.\n"
    )
    return header + dump_yaml(fields.model_dump(exclude_none=True))


def parse_edit(text: str, origin: str = "<edit>") -> EditableFields | None:
    """The edited fields, or None when the reviewer emptied the file (cancel)."""
    stripped = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    if not stripped.strip():
        return None
    try:
        data = yamlfile.load(stripped)
    except (yaml.YAMLError, RecursionError) as exc:
        line, message = yamlfile.error_at(exc)
        raise InputError(f"edited proposal, line {line}: {message}", path=origin) from None
    if not isinstance(data, dict):
        raise InputError("edited proposal must be a mapping of fields", path=origin)
    try:
        fields = EditableFields.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise InputError(f"{where}: {error['msg']}", path=origin) from None
    if not fields.question.strip() or not fields.answer.strip():
        raise InputError("question and answer must not be empty", path=origin)
    return fields


def recheck(
    deck_path: Path,
    proposal: CardProposal,
    encoder: Encoder,
    limits: CheckLimits,
) -> CardProposal:
    """The proposal re-checked against the deck and every other proposal on file."""
    deck = load_deck(deck_path).deck
    others = [p for p in load_proposals(deck_path).proposals if p.id != proposal.id]
    fresh = proposal.model_copy(update={"checks": []})
    return run_checks([fresh], Prior(deck=deck, proposals=others), encoder, limits)[0]


def save_edit(deck_path: Path, edited: CardProposal) -> ReviewOutcome:
    """Store an edited (and re-checked) proposal, if it is still pending."""
    with deck_lock(deck_path):
        store = load_proposals(deck_path)
        current = store.require(edited.id)
        if current.status != "pending":
            return ReviewOutcome(
                proposal_id=edited.id,
                action="already-approved" if current.status == "approved" else "already-rejected",
                by=current.reviewed_by,
                message="someone decided on it while you were editing; edit not saved",
            )
        store.replace(edited.model_copy(update={"status": "pending"}))
        save_proposals(deck_path, store)
    return ReviewOutcome(proposal_id=edited.id, action="edited")


def replace_with(
    deck_path: Path,
    old_id: str,
    new: CardProposal,
    reviewer: str,
    feedback: str,
    now: str | None = None,
) -> list[ReviewOutcome]:
    """Regeneration: reject the old proposal with the feedback and add its replacement."""
    stamp = now or utc_now_iso()
    with deck_lock(deck_path):
        store = load_proposals(deck_path)
        old = store.require(old_id)
        if old.status != "pending":
            return [
                ReviewOutcome(
                    proposal_id=old_id,
                    action="already-approved" if old.status == "approved" else "already-rejected",
                    by=old.reviewed_by,
                    message="someone decided on it meanwhile; the regenerated card was not added",
                )
            ]
        store.replace(
            old.model_copy(
                update={
                    "status": "rejected",
                    "reject_reason": f"regenerated as {new.id}: {feedback}",
                    "reviewed_by": reviewer,
                    "reviewed_at": stamp,
                }
            )
        )
        store.proposals.append(new)
        save_proposals(deck_path, store)
    return [
        ReviewOutcome(proposal_id=old_id, action="rejected", by=reviewer),
        ReviewOutcome(proposal_id=new.id, action="added"),
    ]
