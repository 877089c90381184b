"""A grading worker process for the worker tests: the real protocol, a scripted grader.

python tests/fake_worker.py good           grades every answer "correct"
python tests/fake_worker.py die-after N    after N grades, exits with code 7 on the next answer
python tests/fake_worker.py leak-key       writes the API key to stderr, then exits with 3
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable
from pathlib import Path

from grader.evaluation.workers import main
from grader.models import Card, Grade, GradeEvidence
from grader.settings import Settings


class ScriptedGrader:
    def __init__(self, settings: Settings, mode: str, limit: int) -> None:
        self.settings = settings
        self.mode = mode
        self.limit = limit
        self.graded = 0
        self.grading = 0
        self.peak = 0
        """The most answers this worker graded at once."""

    async def agrade(self, card: Card, answer: str) -> Grade:
        if self.mode == "leak-key":
            sys.stderr.write(f"failed with key {self.settings.api_key_value()}\n")
            sys.stderr.flush()
            os._exit(3)
        if self.mode == "die-after" and self.graded >= self.limit:
            sys.stderr.write("worker crashed on purpose\n")
            sys.stderr.flush()
            os._exit(7)
        self.grading += 1
        self.peak = max(self.peak, self.grading)
        await asyncio.sleep(0.01)
        self.grading -= 1
        self.graded += 1
        key = "received" if self.settings.api_key is not None else "missing"
        return Grade(
            score=1.0,
            verdict="correct",
            feedback=f"pid {os.getpid()} peak {self.peak} key {key}",
            evidence=GradeEvidence(grader="llm", model=self.settings.model),
        )

    async def aclose(self) -> None:
        return None


def scripted(mode: str, limit: int = 0) -> Callable[[Settings, Path], ScriptedGrader]:
    """A grader factory for `WorkerPlan.make_grader` (forked workers) or `main` (spawned)."""

    def make(settings: Settings, home: Path) -> ScriptedGrader:
        return ScriptedGrader(settings, mode, limit)

    return make


if __name__ == "__main__":
    main(scripted(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 0))
