"""`grader expand` as a library call: pick source cards, propose, check, store pending proposals.

Proposals are appended to the proposals file inside the deck lock, re-reading it first, so a
concurrent review loses nothing. The LLM path stores each batch as soon as it is checked: a later
failed call never loses what earlier calls proposed.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import Field

from grader.deckfile import load_deck
from grader.errors import InputError, NotFoundError
from grader.expand.checks import CheckLimits, Encoder, Prior, outcome, run_checks
from grader.expand.proposals import (
    deck_lock,
    load_proposals,
    new_proposal_id,
    save_proposals,
)
from grader.expand.strategies import DETERMINISTIC, StrategyName, propose_deterministic
from grader.models import Card, CardProposal, Deck, Strict, Usage

StrategyChoice = Literal["auto", "llm", "reverse", "list-item", "cloze", "deterministic"]
_CHUNK_MIN = 16


class ExpandResult(Strict):
    """What one `grader expand` run did."""

    deck: str
    """Deck file path."""
    proposals_file: str
    """Where the pending proposals were stored."""
    strategy: str
    """`llm` or the deterministic strategies used (comma-separated)."""
    requested: int
    """How many proposals were asked for."""
    proposed: list[CardProposal] = Field(default_factory=list)
    """Stored as pending (passed or flagged)."""
    rejected: list[CardProposal] = Field(default_factory=list)
    """Dropped by the checks, with their reasons."""
    candidates: int = 0
    """Candidates examined (proposed + rejected)."""
    usage: Usage = Field(default_factory=Usage)
    """LLM token usage (zero for deterministic strategies)."""
    cost_usd: float | None = None
    """Estimated LLM cost, when the model's price is known."""
    model: str | None = None
    """LLM model name."""
    failures: list[str] = Field(default_factory=list)
    """LLM calls that failed (what they proposed is lost; everything else is kept)."""

    @property
    def flagged(self) -> int:
        return sum(1 for p in self.proposed if outcome(p) == "flag")

    def rejected_by_check(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for proposal in self.rejected:
            for name in sorted({c.name for c in proposal.checks if c.outcome == "reject"}):
                counts[name] = counts.get(name, 0) + 1
        return counts


def select_sources(deck: Deck, from_ids: Sequence[str], tag: str | None) -> list[Card]:
    """The cards to ground proposals in: `--from` ids (in the order given), filtered by `--tag`."""
    if from_ids:
        missing = [i for i in from_ids if deck.card(i) is None]
        if missing:
            raise NotFoundError(f"no card {missing[0]!r} in deck {deck.name!r} (--from)")
        cards = [c for i in dict.fromkeys(from_ids) if (c := deck.card(i)) is not None]
    else:
        cards = list(deck.cards)
    if tag is not None:
        cards = [c for c in cards if tag in c.tags]
        if not cards:
            raise InputError(f"no card tagged {tag!r} to expand from (--tag)")
    if not cards:
        raise InputError(f"deck {deck.name!r} has no cards to expand from")
    return cards


def store_checked(
    deck_path: Path,
    candidates: Sequence[CardProposal],
    encoder: Encoder,
    limits: CheckLimits,
    want: int,
    result: ExpandResult,
) -> None:
    """Check candidates against the deck and the file, then append up to `want` survivors.

    Runs inside the deck lock; re-reads deck and proposals so concurrent work is not lost.
    Candidates are checked in chunks and checking stops once `want` are kept.
    """
    if want <= 0 or not candidates:
        return
    with deck_lock(deck_path):
        deck = load_deck(deck_path).deck
        store = load_proposals(deck_path)
        kept: list[CardProposal] = []
        chunk = max(_CHUNK_MIN, 2 * want)
        start = 0
        while start < len(candidates) and len(kept) < want:
            batch = list(candidates[start : start + chunk])
            start += chunk
            prior = Prior(deck=deck, proposals=[*store.proposals, *kept])
            for proposal in run_checks(batch, prior, encoder, limits):
                result.candidates += 1
                if outcome(proposal) == "reject":
                    result.rejected.append(proposal)
                elif len(kept) < want:
                    kept.append(proposal)
        if kept:
            store.proposals.extend(kept)
            save_proposals(deck_path, store)
        result.proposed.extend(kept)


def deterministic_strategies(choice: StrategyChoice) -> tuple[StrategyName, ...]:
    if choice in ("auto", "deterministic"):
        return DETERMINISTIC
    for name in DETERMINISTIC:
        if name == choice:
            return (name,)
    raise ValueError(f"{choice!r} is not a deterministic strategy")


def expand_deterministic(
    deck_path: Path,
    n: int,
    strategies: Sequence[StrategyName],
    encoder: Encoder,
    limits: CheckLimits,
    from_ids: Sequence[str] = (),
    tag: str | None = None,
    make_id: Callable[[], str] = new_proposal_id,
) -> ExpandResult:
    """Propose up to `n` cards with deterministic strategies and store the survivors as pending."""
    from grader.expand.proposals import proposals_path

    if n < 1:
        raise InputError("-n must be at least 1")
    deck = load_deck(deck_path).deck
    sources = select_sources(deck, from_ids, tag)
    result = ExpandResult(
        deck=str(deck_path),
        proposals_file=str(proposals_path(deck_path)),
        strategy=",".join(strategies),
        requested=n,
    )
    candidates = propose_deterministic(sources, strategies, make_id)
    store_checked(deck_path, candidates, encoder, limits, n, result)
    return result
