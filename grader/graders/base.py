"""The Grader interface shared by the offline and LLM graders (and test fakes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from grader.models import Card, Grade


class Grader(Protocol):
    """Grades answers. Never raises for a grading failure: returns an `ungraded` Grade instead."""

    kind: str

    def grade(self, card: Card, answer: str) -> Grade:
        """Grade one answer."""
        ...

    def grade_many(self, items: Sequence[tuple[Card, str]]) -> list[Grade]:
        """Grade many answers (batched or concurrent where the grader can), in input order."""
        ...

    def close(self) -> None:
        """Release connections and threads; a no-op where there are none."""
        ...
