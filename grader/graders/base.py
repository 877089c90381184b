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


CALLS_AHEAD = 2
"""Grades kept started beyond the connection limit by a grader that keeps to it itself. With
the LLM client holding a slot only while its request is on the wire, two more per process
gained 0.010 of ideal at N = 32 and D = 100 ms, and 0.008 at N = 8 in one process (5 of 5
interleaved pairs of runs each, 2026-12-03)."""


def calls_at_once(grader: object, max_connections: int) -> int:
    """How many `agrade` calls to keep running for a limit of `max_connections` requests.

    `max_connections`, unless the grader keeps to a limit of its own no higher (its
    `connection_limit`, which the LLM grader's client enforces by waiting for a connection only
    to send): then `CALLS_AHEAD` more than that limit, whose requests are built and waiting when
    a connection frees."""
    own = getattr(grader, "connection_limit", None)
    if isinstance(own, int) and 0 < own <= max_connections:
        return own + CALLS_AHEAD
    return max_connections
