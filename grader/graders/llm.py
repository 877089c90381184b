"""The LLM grader: a rubric-based grade from any OpenAI-compatible endpoint.

It renders the `grade` prompt (learner text neutralised and fenced by a per-answer tag), asks for a
`GradeResponse` validated against the card's rubric, and converts it to a stored `Grade`. Any
failure is an `ungraded` Grade with the reason; never `incorrect`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from grader.errors import LLMError
from grader.llm import adapter
from grader.llm.adapter import LLMClient, StructuredLLM, StructuredResult
from grader.llm.prompts import PromptTemplate, answer_tag, load_prompt, neutralize_delimiters
from grader.llm.schemas import GradeResponse, normalise_point
from grader.models import Card, Grade, GradeEvidence, PointResult
from grader.rubric import rubric_for
from grader.settings import Settings

PROMPT_NAME = "grade"
NO_FOOTNOTE = "(none)"


def format_rubric(points: Sequence[str]) -> str:
    return "\n".join(f"- {point}" for point in points)


def grade_messages(template: PromptTemplate, card: Card, answer: str) -> list[dict[str, str]]:
    """The chat messages for grading `answer` to `card` (the answer neutralised and fenced)."""
    safe = neutralize_delimiters(answer)
    return template.render(
        question=card.question.strip(),
        reference_answer=card.answer.strip(),
        footnote=(card.footnote or "").strip() or NO_FOOTNOTE,
        rubric=format_rubric(rubric_for(card)),
        answer_tag=answer_tag(safe),
        answer=safe.strip() or "(empty answer)",
    )


def to_grade(response: GradeResponse, rubric: Sequence[str], evidence: GradeEvidence) -> Grade:
    """A validated response as a stored Grade, points in rubric order with the rubric's wording."""
    by_point = {normalise_point(j.point): j for j in response.key_points}
    points = []
    for point in rubric:
        judgement = by_point.get(normalise_point(point))
        if judgement is None:  # validation guarantees presence; keep the grade honest regardless
            points.append(PointResult(point=point, status="missed", evidence=None))
            continue
        points.append(
            PointResult(point=point, status=judgement.status, evidence=judgement.evidence or None)
        )
    return Grade(
        score=response.score,
        verdict=response.verdict,
        key_points=points,
        misconceptions=[m for m in response.misconceptions if m.strip()],
        feedback=response.feedback,
        evidence=evidence,
    )


def preload(settings: Settings) -> None:
    """Load the LLM stack for grading once, before forking grading workers."""
    adapter.preload(GradeResponse)


class LLMGrader:
    """Grades with an LLM. `client` defaults to the real adapter; tests pass a fake."""

    kind = "llm"

    def __init__(
        self,
        settings: Settings,
        home: Path | None,
        *,
        client: StructuredLLM | None = None,
        template: PromptTemplate | None = None,
    ) -> None:
        self.settings = settings
        self.client: StructuredLLM = client or LLMClient(settings, home)
        self.template = template or load_prompt(PROMPT_NAME)

    @property
    def connection_limit(self) -> int | None:
        """The most requests its client keeps in flight, when the client enforces one."""
        limit = getattr(self.client, "connection_limit", None)
        return limit if isinstance(limit, int) else None

    def _evidence(self, result: StructuredResult[GradeResponse] | None = None) -> GradeEvidence:
        if result is None:
            return GradeEvidence(
                grader="llm",
                model=self.client.model,
                base_url=self.client.base_url,
                prompt_hash=self.template.hash,
                attempts=0,
            )
        return GradeEvidence(
            grader="llm",
            model=result.model,
            base_url=result.base_url,
            prompt_hash=self.template.hash,
            usage=result.usage,
            latency_ms=round(result.latency_ms, 3),
            cached=result.cached,
            attempts=result.attempts,
        )

    def _failed(self, error: LLMError) -> Grade:
        return Grade.ungraded(self.settings.redact(str(error)), self._evidence())

    def grade(self, card: Card, answer: str) -> Grade:
        rubric = rubric_for(card)
        try:
            result = self.client.structured(
                GradeResponse,
                grade_messages(self.template, card, answer),
                prompt_hash=self.template.hash,
                purpose="grade",
                context={"rubric": rubric},
            )
        except LLMError as error:
            return self._failed(error)
        return to_grade(result.value, rubric, self._evidence(result))

    async def agrade(self, card: Card, answer: str) -> Grade:
        """Grade concurrently with other `agrade` calls (one connection limit per grader)."""
        rubric = rubric_for(card)
        try:
            result = await self.client.astructured(
                GradeResponse,
                grade_messages(self.template, card, answer),
                prompt_hash=self.template.hash,
                purpose="grade",
                context={"rubric": rubric},
            )
        except LLMError as error:
            return self._failed(error)
        return to_grade(result.value, rubric, self._evidence(result))

    async def agrade_many(self, items: Sequence[tuple[Card, str]]) -> list[Grade]:
        """Grade concurrently, in input order (call `aclose` before the event loop ends)."""
        return list(await asyncio.gather(*(self.agrade(card, answer) for card, answer in items)))

    def close(self) -> None:
        self.client.close()

    async def aclose(self) -> None:
        """Close this event loop's connections; later `agrade` calls open new ones."""
        await self.client.aclose()

    def grade_many(self, items: Sequence[tuple[Card, str]]) -> list[Grade]:
        """Grade in input order, up to `max_connections` requests at a time (threads)."""
        if len(items) <= 1:
            return [self.grade(card, answer) for card, answer in items]
        workers = min(self.settings.max_connections, len(items))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="llm-grade") as pool:
            return list(pool.map(lambda item: self.grade(*item), items))
