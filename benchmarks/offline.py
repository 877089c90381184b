"""Offline-grader speed: `grader --help`, a fresh-process `grader grade`, warm grades, batch rate.

    .venv/bin/python benchmarks/offline.py [--runs 5] [--batch 400] [--batch-runs 3]

Prints what it measured; asserts nothing (the machine is shared, times vary). The first line names
the BLAS kernel numpy runs: where the environment forces an older one (OPENBLAS_CORETYPE), the
encoder runs at about half speed; `benchmarks/blas_kernel.py` says how to measure both.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from blas_kernel import describe

REPO = Path(__file__).resolve().parent.parent
GRADER = str(Path(sys.executable).parent / "grader")
DATA = REPO.parent / "shared" / "data" / "scientsbank_train.jsonl"


def _fresh(argv: list[str], runs: int, env: dict[str, str]) -> float:
    times: list[float] = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, env=env, cwd=REPO)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--batch", type=int, default=400)
    parser.add_argument("--batch-runs", type=int, default=3)
    parser.add_argument("--batch-child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.batch_child is not None:
        batch_child(args.batch_child)
        return
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["GRADER_HOME"] = tempfile.mkdtemp(prefix="grader-bench-")
    print(describe())

    help_s = _fresh([GRADER, "--help"], args.runs, env)
    print(f"grader --help, fresh process, median of {args.runs}: {help_s * 1000:.0f} ms")
    grade_argv = [
        GRADER,
        "grade",
        "decks/mlops-foundations.yaml",
        "cd14a35d890",
        "Design, development and operations",
        "--grader",
        "offline",
    ]
    grade_s = _fresh(grade_argv, args.runs, env)
    print(
        f"grader grade --grader offline, fresh process, median of {args.runs}: "
        f"{grade_s * 1000:.0f} ms"
    )

    from grader.deckfile import load_deck
    from grader.graders.offline import OfflineGrader

    started = time.perf_counter()
    grader = OfflineGrader.load()
    print(f"OfflineGrader.load() in process: {(time.perf_counter() - started) * 1000:.0f} ms")
    deck = load_deck(REPO / "decks" / "mlops-pipeline.yaml").deck
    answers = ["It tracks experiments and versions", "monitoring and retraining", "no idea"]
    first: list[float] = []
    warm: list[float] = []
    for i, card in enumerate(deck.cards[:30]):
        for bucket, answer in ((first, f"{answers[i % 3]} {i}"), (warm, f"{answers[i % 3]} {i}!")):
            started = time.perf_counter()
            grader.grade(card, answer)
            bucket.append((time.perf_counter() - started) * 1000)
    print(
        f"warm process, first grade of a card (card texts encoded too), median of {len(first)}: "
        f"{statistics.median(first):.1f} ms"
    )
    print(
        f"warm process, card seen before, new answer, median of {len(warm)}: "
        f"{statistics.median(warm):.1f} ms"
    )

    cold: list[float] = []
    warm_batch: list[float] = []
    for _ in range(args.batch_runs):  # a fresh process each: no card, word or stem cached
        done = subprocess.run(
            [sys.executable, __file__, "--batch-child", str(args.batch)],
            check=True,
            capture_output=True,
            text=True,
            env=env,
            cwd=REPO,
        )
        first_rate, second_rate = (float(x) for x in done.stdout.split())
        cold.append(first_rate)
        warm_batch.append(second_rate)
    what = f"grade_many over {args.batch} answers of {DATA.name}"
    print(_rates(f"{what}, every card new (cold), fresh process", cold))
    print(_rates(f"{what} again, new answers to the same (already encoded) cards", warm_batch))


def _rates(what: str, rates: list[float]) -> str:
    runs = ", ".join(f"{r:.0f}" for r in rates)
    median = statistics.median(rates)
    return f"{what}, median of {len(rates)}: {median:.0f} answers/s (runs: {runs})"


def batch_child(size: int) -> None:
    """In a fresh process: the cold and the warm batch rate, printed as two numbers."""
    from grader.graders.offline import OfflineGrader
    from grader.models import Card

    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    random.Random(0).shuffle(rows)
    cards: dict[str, Card] = {}
    items = []
    for row in rows[:size]:
        qid = row["question_id"]
        if qid not in cards:
            cards[qid] = Card(id=qid, question=row["question"], answer=row["reference_answer"])
        items.append((cards[qid], row["student_answer"]))
    grader = OfflineGrader.load()
    rates = []
    for batch in (items, [(card, answer + " indeed") for card, answer in items]):
        started = time.perf_counter()
        grader.grade_many(batch)
        rates.append(len(batch) / (time.perf_counter() - started))
    print(*rates)


if __name__ == "__main__":
    main()
