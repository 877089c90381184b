"""Time to record one attempt (one fsync'd transaction), alone and with 3 sessions at once.

Run: .venv/bin/python benchmarks/practice_history.py
"""

from __future__ import annotations

import multiprocessing
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fakes import make_grade

from grader.history import AttemptInput, History
from grader.scheduling import Scheduler

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def run(home: str, worker: int, count: int) -> list[float]:
    scheduler = Scheduler(fuzz=False)
    grade = make_grade(0.9, points=["a", "b", "c"])
    times = []
    with History.open(Path(home)) as history:
        for i in range(count):
            attempt = AttemptInput(
                session_id=f"w{worker}",
                deck="Bench",
                card_id=f"c{i % 20}",
                question="Q?",
                answer="an answer of a few words",
                grade=grade,
                answered_at=T0,
            )
            start = time.perf_counter()
            history.record(
                attempt, rating="good", scheduler=scheduler, now=T0 + timedelta(minutes=i)
            )
            times.append(time.perf_counter() - start)
    return times


def report(label: str, times: list[float]) -> None:
    ms = sorted(t * 1000 for t in times)
    p95 = ms[int(len(ms) * 0.95) - 1]
    print(f"{label}: {len(ms)} attempts, median {statistics.median(ms):.2f} ms, p95 {p95:.2f} ms")


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        History.open(Path(home)).close()
        report("1 session ", run(home, 0, 300))
    with tempfile.TemporaryDirectory() as home:
        History.open(Path(home)).close()
        with multiprocessing.get_context("spawn").Pool(3) as pool:
            results = pool.starmap(run, [(home, w, 200) for w in range(3)])
        report("3 sessions", [t for r in results for t in r])
        with History.open(Path(home)) as history:
            print(f"recorded: {len(history.attempts())} of 600")


if __name__ == "__main__":
    main()
