"""Rubric generation: key points per card, by the LLM (`rubric` prompt) or heuristically."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel

from grader import asyncrun
from grader.errors import LLMError
from grader.llm.adapter import StructuredLLM
from grader.llm.prompts import PromptTemplate, load_prompt
from grader.llm.schemas import RubricResponse
from grader.models import Card, Deck, Usage, fingerprint
from grader.rubric import derive_key_points

PROMPT_NAME = "rubric"


class RubricOutcome(BaseModel):
    """The rubric made for one card, or why it could not be made."""

    card_id: str
    answer: str
    """The reference answer the rubric was made from (a card edited since is left alone)."""
    key_points: list[str] | None = None
    source: Literal["heuristic", "llm"]
    error: str | None = None
    cached: bool = False
    usage: Usage = Usage()


def rubric_messages(template: PromptTemplate, card: Card) -> list[dict[str, str]]:
    return template.render(
        question=card.question.strip(),
        reference_answer=card.answer.strip(),
        footnote=(card.footnote or "").strip() or "(none)",
    )


def heuristic_rubrics(cards: Sequence[Card]) -> list[RubricOutcome]:
    return [
        RubricOutcome(
            card_id=card.id,
            answer=card.answer,
            key_points=derive_key_points(card.answer),
            source="heuristic",
        )
        for card in cards
    ]


def llm_rubrics(
    client: StructuredLLM,
    cards: Sequence[Card],
    *,
    template: PromptTemplate | None = None,
) -> list[RubricOutcome]:
    """Ask the LLM for each card's key points (concurrently, within the client's connection
    limit), in input order; failures kept. Runs on its own event loop, so Ctrl-C cancels the
    requests in flight at once instead of waiting for their timeouts."""
    prompt = template or load_prompt(PROMPT_NAME)

    async def one(card: Card) -> RubricOutcome:
        try:
            result = await client.astructured(
                RubricResponse,
                rubric_messages(prompt, card),
                prompt_hash=prompt.hash,
                purpose="rubric",
            )
        except LLMError as error:
            return RubricOutcome(
                card_id=card.id, answer=card.answer, source="llm", error=str(error)
            )
        return RubricOutcome(
            card_id=card.id,
            answer=card.answer,
            key_points=result.value.key_points,
            source="llm",
            cached=result.cached,
            usage=result.usage,
        )

    async def every() -> list[RubricOutcome]:
        try:
            return list(await asyncio.gather(*(one(card) for card in cards)))
        finally:
            await client.aclose()

    return asyncrun.run(every()) if cards else []


def apply_rubrics(deck: Deck, outcomes: Sequence[RubricOutcome]) -> tuple[Deck, list[str]]:
    """The deck with each successful rubric stored on its card; returns the updated card ids.

    A card whose reference answer changed since its rubric was made is skipped.
    """
    by_id = {o.card_id: o for o in outcomes if o.key_points}
    updated: list[str] = []
    cards = []
    for card in deck.cards:
        outcome = by_id.get(card.id)
        if outcome is None or outcome.answer != card.answer or outcome.key_points is None:
            cards.append(card)
            continue
        cards.append(
            card.model_copy(
                update={
                    "rubric": outcome.key_points,
                    "rubric_source": outcome.source,
                    "rubric_answer": fingerprint(card.answer),
                    "rubric_fingerprint": fingerprint("\n".join(outcome.key_points)),
                }
            )
        )
        updated.append(card.id)
    return deck.model_copy(update={"cards": cards}), updated
