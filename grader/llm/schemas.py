"""Response models the LLM fills in: descriptions instruct the model, validators drive re-asks.

These are separate from the stored `grader.models.Grade`: the wording here is for the model, and a
response only becomes a Grade after it validated against the card's rubric (passed as the
validation context `{"rubric": [...]}`, see grader.llm.context).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from grader.llm.context import current_context
from grader.models import verdict_for_score

MAX_FEEDBACK_SENTENCES = 3
SCORE_SLACK = 0.15
"""How far the score may exceed the credit the key points earn (hit 1, partial 0.5)."""

_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=\S)")
_POINT_NOISE = re.compile(r"[\s*`_]+")


def normalise_point(text: str) -> str:
    """Comparison form of a key point: case, whitespace, Markdown and end punctuation ignored."""
    return _POINT_NOISE.sub(" ", text).strip(" .;:").casefold()


def sentence_count(text: str) -> int:
    return len([s for s in _SENTENCE_BREAK.split(text.strip()) if s.strip()])


class PointJudgement(BaseModel):
    """How the student's answer covers one rubric key point."""

    point: str = Field(description="The rubric key point, copied exactly as given in the rubric.")
    status: Literal["hit", "partial", "missed"] = Field(
        description=(
            "hit: the answer states this point correctly in substance (wording may differ). "
            "partial: the answer gestures at it but is vague or incomplete. "
            "missed: absent, wrong, or only claimed without content."
        )
    )
    evidence: str = Field(
        default="",
        description="A short quote from the student's answer supporting the status, or why missed.",
    )


class GradeResponse(BaseModel):
    """A rubric-based grade of a student's answer. Judge only the content of the answer."""

    key_points: list[PointJudgement] = Field(
        description="One judgement for every rubric key point, in rubric order, each exactly once."
    )
    misconceptions: list[str] = Field(
        default_factory=list,
        description="Factually wrong claims the answer makes about the topic (empty if none).",
    )
    score: float = Field(
        ge=0.0,
        le=1.0,
        description=(
            "Score in [0, 1] that follows from the key points: about (hits + 0.5 * partials) / "
            "number of points, lowered for misconceptions. Never higher than the points earn."
        ),
    )
    verdict: Literal["correct", "partial", "incorrect"] = Field(
        description="correct if score >= 0.8, partial if 0.35 <= score < 0.8, else incorrect."
    )
    feedback: str = Field(
        description=(
            "One to three sentences addressed to the student (second person): what was right and "
            "what to add or fix."
        )
    )

    @field_validator("feedback")
    @classmethod
    def _feedback_sentences(cls, value: str) -> str:
        text = value.strip()
        if not text:
            raise ValueError("feedback must not be empty: write 1-3 sentences to the student")
        if sentence_count(text) > MAX_FEEDBACK_SENTENCES:
            raise ValueError("feedback must be at most 3 sentences")
        return text

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> GradeResponse:
        expected = verdict_for_score(self.score)
        if expected != self.verdict:
            raise ValueError(
                f"verdict {self.verdict!r} disagrees with score {self.score:.2f}; "
                f"a score of {self.score:.2f} means {expected!r}"
            )
        rubric = current_context(info).get("rubric")
        if rubric:
            self._check_points(list(rubric))
        return self

    def _check_points(self, rubric: list[str]) -> None:
        wanted = {normalise_point(p): p for p in rubric}
        seen: list[str] = []
        unknown: list[str] = []
        for judgement in self.key_points:
            key = normalise_point(judgement.point)
            if key in wanted:
                seen.append(key)
            else:
                unknown.append(judgement.point)
        missing = [wanted[k] for k in wanted if k not in seen]
        repeated = sorted({wanted[k] for k in seen if seen.count(k) > 1})
        problems = []
        if unknown:
            problems.append(f"points not in the rubric: {unknown}")
        if missing:
            problems.append(f"rubric points not judged: {missing}")
        if repeated:
            problems.append(f"points judged more than once: {repeated}")
        if problems:
            raise ValueError(
                "key_points must judge exactly the rubric's points, copied verbatim; "
                + "; ".join(problems)
            )
        credit = sum(
            1.0 if j.status == "hit" else 0.5 if j.status == "partial" else 0.0
            for j in self.key_points
        ) / max(len(rubric), 1)
        if self.score > credit + SCORE_SLACK:
            raise ValueError(
                f"score {self.score:.2f} is higher than the key points earn ({credit:.2f}); "
                "the score must follow from the rubric points"
            )


class RubricResponse(BaseModel):
    """The key points a complete answer to a flashcard must contain."""

    key_points: list[str] = Field(
        min_length=1,
        max_length=8,
        description=(
            "Atomic, checkable claims taken from the reference answer (and footnote only where it "
            "is essential), one claim each, in the reference answer's order, each under 25 words."
        ),
    )

    @field_validator("key_points")
    @classmethod
    def _points(cls, value: list[str]) -> list[str]:
        points = [" ".join(p.split()) for p in value]
        if any(not p for p in points):
            raise ValueError("key points must not be empty")
        if len({normalise_point(p) for p in points}) != len(points):
            raise ValueError("key points must be distinct")
        if any(len(p) > 300 for p in points):
            raise ValueError("each key point must be one short claim (under 25 words)")
        return points
