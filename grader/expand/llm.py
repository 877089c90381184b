"""The LLM proposer: new cards grounded in the deck, as structured output, in concurrent batches.

Each batch is one structured call through the adapter (`grader.llm.adapter`, the only module
that touches openai/instructor). Batches share one connection limit (`max_connections`); each
batch is checked and stored as soon as it returns, so a failed call loses only its own cards.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from grader import asyncrun
from grader.deckfile import load_deck
from grader.errors import LLMError
from grader.expand.checks import CheckLimits, Encoder
from grader.expand.proposals import load_proposals, new_proposal_id, proposals_path
from grader.expand.run import ExpandResult, select_sources, store_checked
from grader.models import Card, CardProposal, Deck, Usage, utc_now_iso

if TYPE_CHECKING:
    from grader.llm.adapter import StructuredLLM
    from grader.settings import Settings

PROMPT = "expand"
REGENERATE_PROMPT = "expand-regenerate"
BATCH_SIZE = 5
"""Cards asked for per call: small batches keep each answer short and failures cheap."""
MAX_GROUNDING_CARDS = 30
"""Deck cards shown per call (each batch sees a different slice of the source cards)."""
MAX_AVOID = 60
"""Already proposed or rejected questions listed in the prompt, newest first."""
MAX_RATIONALE_CHARS = 240


class ProposedCard(BaseModel):
    """One new flashcard proposed for the deck."""

    question: str = Field(
        description="The new question, in the deck's style. Must not reveal the answer."
    )
    answer: str = Field(
        description="The reference answer, supported by the deck cards; a list as `- item` lines."
    )
    footnote: str | None = Field(
        default=None, description="Optional short explanation shown after answering."
    )
    tags: list[str] = Field(default_factory=list, description="Tags, reusing the deck's tags.")
    builds_on: list[str] = Field(
        description="Ids of the deck cards this card is grounded in, copied exactly."
    )
    rationale: str = Field(description="One line: why this card is worth adding.")

    @field_validator("question", "answer")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()

    @field_validator("builds_on")
    @classmethod
    def _known_ids(cls, value: list[str], info: ValidationInfo) -> list[str]:
        from grader.llm.context import current_context

        known = current_context(info).get("card_ids")
        if known is None:
            return value
        if not value:
            raise ValueError("name at least one deck card id this card builds on")
        unknown = [i for i in value if i not in known]
        if unknown:
            raise ValueError(f"unknown card ids {unknown}; use ids from the deck cards given")
        return value

    @field_validator("rationale")
    @classmethod
    def _one_line(cls, value: str) -> str:
        line = " ".join(value.split())
        if not line:
            raise ValueError("give a one-line rationale")
        return line[:MAX_RATIONALE_CHARS]


class ProposedCards(BaseModel):
    """A batch of new flashcards."""

    cards: list[ProposedCard] = Field(description="The proposed cards.", min_length=1)


def render_cards(cards: Sequence[Card]) -> str:
    """Deck cards as delimited blocks; their text is neutralised so it cannot close a section."""
    from grader.llm.prompts import neutralize_delimiters

    blocks = []
    for card in cards:
        parts = [
            f'<card id="{card.id}">',
            f"Q: {neutralize_delimiters(card.question)}",
            f"A: {neutralize_delimiters(card.answer)}",
        ]
        if card.footnote:
            parts.append(f"Footnote: {neutralize_delimiters(card.footnote)}")
        if card.tags:
            parts.append("Tags: " + ", ".join(card.tags))
        parts.append("</card>")
        blocks.append("\n".join(parts))
    return "\n\n".join(blocks)


def _to_proposal(card: ProposedCard, model: str, prompt_hash: str, now: str) -> CardProposal:
    return CardProposal(
        id=new_proposal_id(),
        question=card.question,
        answer=card.answer,
        footnote=card.footnote or None,
        tags=list(dict.fromkeys(card.tags)),
        builds_on=list(dict.fromkeys(card.builds_on)),
        rationale=card.rationale,
        strategy="llm",
        model=model,
        prompt_hash=prompt_hash,
        created_at=now,
    )


def _slices(sources: Sequence[Card], batches: int) -> list[list[Card]]:
    """Source cards dealt round-robin over batches, so batches ground in different cards."""
    if len(sources) <= MAX_GROUNDING_CARDS:
        return [list(sources)] * batches
    dealt: list[list[Card]] = [[] for _ in range(batches)]
    for index, card in enumerate(sources):
        dealt[index % batches].append(card)
    return [group[:MAX_GROUNDING_CARDS] or list(sources[:MAX_GROUNDING_CARDS]) for group in dealt]


def _client(settings: Settings, home: Path | None) -> StructuredLLM:
    from grader.llm.adapter import LLMClient

    return LLMClient(settings, home)


def estimate_cost(model: str, usage: Usage) -> float | None:
    """USD at list price when the model's price is known."""
    try:
        from grader.evaluation.runner import estimate_cost as price
    except ImportError:
        return None
    return price(model, usage)


def expand_llm(
    deck_path: Path,
    n: int,
    *,
    settings: Settings,
    home: Path | None,
    encoder: Encoder,
    limits: CheckLimits,
    from_ids: Sequence[str] = (),
    tag: str | None = None,
    instructions: str | None = None,
    progress: bool = False,
    client: StructuredLLM | None = None,
) -> ExpandResult:
    """Propose up to `n` cards with the LLM; each batch is checked and stored when it returns."""
    from grader.llm.prompts import load_prompt, neutralize_delimiters

    deck = load_deck(deck_path).deck
    sources = select_sources(deck, from_ids, tag)
    template = load_prompt(PROMPT)
    llm = client or _client(settings, home)
    result = ExpandResult(
        deck=str(deck_path),
        proposals_file=str(proposals_path(deck_path)),
        strategy="llm",
        requested=n,
        model=llm.model,
    )
    on_file = load_proposals(deck_path).proposals
    avoid = "\n".join(f"- {' '.join(p.question.split())}" for p in reversed(on_file[-MAX_AVOID:]))
    batches = math.ceil(n / BATCH_SIZE)
    counts = [BATCH_SIZE] * (batches - 1) + [n - BATCH_SIZE * (batches - 1)]
    slices = _slices(sources, batches)
    requests = [
        template.render(
            deck_name=neutralize_delimiters(deck.name),
            cards=render_cards(group),
            avoid=neutralize_delimiters(avoid) or "(none)",
            instructions=neutralize_delimiters(instructions or ""),
            count=str(count),
        )
        for group, count in zip(slices, counts, strict=True)
    ]
    context = {"card_ids": [c.id for c in deck.cards]}

    async def one(messages: list[dict[str, str]]) -> Any:
        return await llm.astructured(
            ProposedCards, messages, prompt_hash=template.hash, purpose="expand", context=context
        )

    async def run_all() -> None:
        tasks = [asyncio.ensure_future(one(messages)) for messages in requests]
        bar = _progress(progress, len(tasks))
        try:
            for next_done in asyncio.as_completed(tasks):
                try:
                    answer = await next_done
                except LLMError as exc:
                    result.failures.append(str(exc))
                else:
                    result.usage = result.usage + answer.usage
                    now = utc_now_iso()
                    proposals = [
                        _to_proposal(card, llm.model, template.hash, now)
                        for card in answer.value.cards
                    ]
                    want = n - len(result.proposed)
                    store_checked(deck_path, proposals, encoder, limits, want, result)
                if bar is not None:
                    bar[0].advance(bar[1])
        finally:
            if bar is not None:
                bar[0].stop()
            await llm.aclose()

    try:
        asyncrun.run(run_all())
    finally:
        if client is None:
            llm.close()
    result.cost_usd = estimate_cost(llm.model, result.usage)
    return result


def _progress(enabled: bool, total: int) -> tuple[Any, Any] | None:
    """A rich progress bar on stderr (None when disabled)."""
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(
        TextColumn("proposing"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("batches"),
        console=Console(stderr=True),
        transient=True,
    )
    task = bar.add_task("expand", total=total)
    bar.start()
    return bar, task


def regenerate(
    deck_path: Path,
    proposal: CardProposal,
    feedback: str,
    settings: Settings,
    home: Path | None,
    client: StructuredLLM | None = None,
) -> CardProposal:
    """A replacement for `proposal` written by the LLM following the reviewer's feedback."""
    from grader.expand.proposals import dump_yaml
    from grader.llm.prompts import load_prompt, neutralize_delimiters

    deck = load_deck(deck_path).deck
    template = load_prompt(REGENERATE_PROMPT)
    llm = client or _client(settings, home)
    grounding = _grounding(deck, proposal)
    shown = {
        "question": proposal.question,
        "answer": proposal.answer,
        "footnote": proposal.footnote,
        "builds_on": proposal.builds_on,
    }
    messages = template.render(
        deck_name=neutralize_delimiters(deck.name),
        cards=render_cards(grounding),
        proposal=neutralize_delimiters(dump_yaml({k: v for k, v in shown.items() if v})),
        feedback=neutralize_delimiters(feedback),
    )
    try:
        answer = llm.structured(
            ProposedCard,
            messages,
            prompt_hash=template.hash,
            purpose="expand-regenerate",
            context={"card_ids": [c.id for c in deck.cards]},
        )
    finally:
        if client is None:
            llm.close()
    new = _to_proposal(answer.value, llm.model, template.hash, utc_now_iso())
    return new.model_copy(update={"tags": new.tags or list(proposal.tags)})


def _grounding(deck: Deck, proposal: CardProposal) -> list[Card]:
    named = [c for i in proposal.builds_on if (c := deck.card(i)) is not None]
    rest = [c for c in deck.cards if c not in named]
    return (named + rest)[:MAX_GROUNDING_CARDS]
