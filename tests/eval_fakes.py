"""A fake grader and a small dataset for the eval tests."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grader.models import Card, Grade, GradeEvidence, Usage, verdict_for_score


def fake_score(answer: str) -> float | None:
    """Deterministic: 'right' -> 1, 'half' -> 0.5, 'FAIL' -> ungraded, else 0."""
    if "FAIL" in answer:
        return None
    if "right" in answer:
        return 1.0
    if "half" in answer:
        return 0.5
    return 0.0


class FakeGrader:
    """Queue-free fake at the Grader interface; records calls and the peak of in-flight calls."""

    kind = "fake"

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[str] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def _grade(self, answer: str) -> Grade:
        self.calls.append(answer)
        evidence = GradeEvidence(
            grader="fake", model="fake-1", usage=Usage(prompt_tokens=10, completion_tokens=2)
        )
        score = fake_score(answer)
        if score is None:
            return Grade.ungraded("fake failure", evidence)
        return Grade(
            score=score,
            verdict=verdict_for_score(score),
            feedback=f"fb {answer}",
            evidence=evidence,
        )

    def grade(self, card: Card, answer: str) -> Grade:
        return self._grade(answer)

    def grade_many(self, items: Sequence[tuple[Card, str]]) -> list[Grade]:
        return [self._grade(answer) for _, answer in items]

    def close(self) -> None:
        pass

    async def agrade(self, card: Card, answer: str) -> Grade:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            return self._grade(answer)
        finally:
            with self._lock:
                self.in_flight -= 1


class SyncFakeGrader(FakeGrader):
    """A fake without `agrade`, like the offline grader; records each batch's size."""

    agrade = None  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def grade_many(self, items: Sequence[tuple[Card, str]]) -> list[Grade]:
        self.batches.append(len(items))
        return super().grade_many(items)


def record(i: int, answer: str, score: float, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"r{i}",
        "question": f"Question {i % 3}?",
        "reference_answer": f"Reference {i % 3}.",
        "student_answer": answer,
        "score": score,
        "score_max": 4,
        **extra,
    }


def write_dataset(path: Path, rows: list[dict[str, Any] | str]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def standard_rows(n: int = 12) -> list[dict[str, Any] | str]:
    """n responses: a mix of right/half/wrong answers, splits and kinds; one wrong answer
    the fake accepts (a false accept) and one the fake fails on."""
    rows: list[dict[str, Any] | str] = []
    for i in range(n):
        kind = ("verbatim", "partial", "wrong")[i % 3]
        answer = {"verbatim": "right", "partial": "half", "wrong": "nope"}[kind] + f" {i}"
        score = {"verbatim": 4, "partial": 2, "wrong": 0}[kind]
        rows.append(record(i, answer, score, split="a" if i < n // 2 else "b", kind=kind))
    rows.append(record(n, "right but wrong", 0, split="b", kind="wrong"))
    rows.append(record(n + 1, "FAIL", 4, split="b", kind="verbatim"))
    return rows


def _between(text: str, start: str, end: str) -> str:
    _, _, rest = text.partition(start)
    return rest.partition(end)[0] if rest else ""


def grade_reply_arguments(body: dict[str, Any]) -> dict[str, Any]:
    """A valid GradeResponse for a grading request, scored by `fake_score` of the answer."""
    import re

    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    rubric = [
        line[2:].strip()
        for line in _between(user, "<rubric>", "</rubric>").splitlines()
        if line.startswith("- ")
    ]
    tags = re.findall(r"^<([A-Za-z0-9_-]+)>$", user, flags=re.MULTILINE)
    tag = tags[-1]
    answer = user.rpartition(f"<{tag}>\n")[2].partition(f"\n</{tag}>")[0].strip()
    score = fake_score(answer)
    score = 0.0 if score is None else score
    status = {1.0: "hit", 0.5: "partial"}.get(score, "missed")
    return {
        "key_points": [{"point": p, "status": status, "evidence": ""} for p in rubric],
        "misconceptions": [],
        "score": score,
        "verdict": verdict_for_score(score),
        "feedback": f"Graded {answer[:20]}.",
    }


def grade_responder(body: dict[str, Any]) -> Any:
    """A LoopbackOpenAIServer responder answering grading requests as a tool call."""
    from grader.testing.openai_server import Reply

    return Reply.tool_call("GradeResponse", grade_reply_arguments(body))
