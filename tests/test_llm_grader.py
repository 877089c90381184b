"""LLMGrader unit tests with a fake LLM client (no HTTP): prompts, validation, failures."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from grader.errors import LLMError
from grader.graders.llm import LLMGrader
from grader.llm.schemas import GradeResponse
from grader.models import Card
from grader.settings import Settings
from grader.testing.fake_llm import FakeLLM

CARD = Card(
    id="c1",
    question="Name the three phases of MLOps.",
    answer="- Design\n- Model development\n- Operations",
    footnote="From ml-ops.org.",
)
RUBRIC = ["Design", "Model development", "Operations"]


def response(
    statuses: tuple[str, str, str] = ("hit", "hit", "hit"),
    score: float = 1.0,
    verdict: str = "correct",
    feedback: str = "Well done. You named all three phases.",
    **extra: Any,
) -> dict[str, Any]:
    return {
        "key_points": [
            {"point": p, "status": s, "evidence": "quote"}
            for p, s in zip(RUBRIC, statuses, strict=True)
        ],
        "misconceptions": [],
        "score": score,
        "verdict": verdict,
        "feedback": feedback,
        **extra,
    }


def make(fake: FakeLLM, grader_home: Path) -> LLMGrader:
    settings = Settings(base_url="http://unused/v1", api_key="sk-secret-123")
    return LLMGrader(settings, grader_home, client=fake)


def test_valid_response_becomes_a_grade_with_evidence(grader_home: Path) -> None:
    fake = FakeLLM([response(("hit", "partial", "missed"), score=0.5, verdict="partial")])
    grade = make(fake, grader_home).grade(CARD, "Design, and some modelling")
    assert grade.verdict == "partial"
    assert grade.score == 0.5
    assert [(p.point, p.status) for p in grade.key_points] == [
        ("Design", "hit"),
        ("Model development", "partial"),
        ("Operations", "missed"),
    ]
    assert grade.evidence.grader == "llm"
    assert grade.evidence.model == "fake"
    assert grade.evidence.prompt_hash and len(grade.evidence.prompt_hash) == 16
    assert grade.evidence.usage.total_tokens == 120
    call = fake.calls[0]
    assert call.purpose == "grade"
    assert call.context == {"rubric": RUBRIC}
    assert call.response_model is GradeResponse


def test_prompt_carries_rubric_reference_footnote_and_fenced_answer(grader_home: Path) -> None:
    fake = FakeLLM([response()])
    make(fake, grader_home).grade(CARD, "Design, model development and operations")
    system, user = fake.calls[0].messages
    assert system["role"] == "system" and "DATA" in system["content"]
    text = user["content"]
    assert "- Model development" in text
    assert "From ml-ops.org." in text
    tag = text.split("<student_answer_", 1)[1].split(">", 1)[0]
    body = text.split(f"<student_answer_{tag}>\n", 1)[1].split(f"\n</student_answer_{tag}>", 1)[0]
    assert body == "Design, model development and operations"


def test_points_reordered_and_restyled_map_back_to_rubric_order(grader_home: Path) -> None:
    out = response()
    out["key_points"] = [
        {"point": "operations.", "status": "hit"},
        {"point": "**Design**", "status": "hit"},
        {"point": "model  development", "status": "hit"},
    ]
    grade = make(FakeLLM([out]), grader_home).grade(CARD, "x")
    assert [p.point for p in grade.key_points] == RUBRIC


@pytest.mark.parametrize(
    ("output", "why"),
    [
        (response(score=0.9, verdict="partial"), "disagrees"),
        (response(feedback=""), "feedback"),
        (response(feedback="One. Two. Three. Four."), "at most 3 sentences"),
        (response(score=1.5), "less than or equal"),
        ({**response(), "key_points": response()["key_points"][:2]}, "not judged"),
        (response(("missed", "missed", "missed"), score=1.0, verdict="correct"), "higher than"),
    ],
)
def test_invalid_output_is_ungraded_never_incorrect(
    grader_home: Path, output: dict[str, Any], why: str
) -> None:
    grade = make(FakeLLM([output]), grader_home).grade(CARD, "x")
    assert grade.verdict == "ungraded"
    assert grade.score is None
    assert grade.reason is not None and why in grade.reason


def test_llm_failure_is_ungraded_and_redacts_the_key(grader_home: Path) -> None:
    fake = FakeLLM([LLMError("HTTP 401 with key sk-secret-123")])
    grade = make(fake, grader_home).grade(CARD, "x")
    assert grade.verdict == "ungraded"
    assert grade.reason is not None
    assert "sk-secret-123" not in grade.reason
    assert "***" in grade.reason


def test_grade_many_keeps_input_order(grader_home: Path) -> None:
    outputs = [
        response(score=1.0),
        response(("hit", "missed", "missed"), score=0.33, verdict="incorrect"),
        response(("hit", "hit", "missed"), score=0.67, verdict="partial"),
    ]
    fake = FakeLLM(outputs)
    grader = make(fake, grader_home)
    grader.settings = Settings(max_connections=1)  # one worker: the queue order is the call order
    grades = grader.grade_many([(CARD, "a"), (CARD, "b"), (CARD, "c")])
    assert [g.verdict for g in grades] == ["correct", "incorrect", "partial"]


def test_agrade(grader_home: Path) -> None:
    fake = FakeLLM([response(), response(("hit", "hit", "partial"), 0.83, "correct")])
    grader = make(fake, grader_home)

    async def run() -> list[str]:
        grades = await grader.agrade_many([(CARD, "a"), (CARD, "b")])
        return [g.verdict for g in grades]

    assert asyncio.run(run()) == ["correct", "correct"]
    assert len(fake.calls) == 2
