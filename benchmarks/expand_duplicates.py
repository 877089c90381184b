"""Measure the expander's duplicate check on the seed decks; prints what it measured.

    .venv/bin/python benchmarks/expand_duplicates.py

Pair similarity = mean of question-question and answer-answer cosine similarity (all-MiniLM-L6-v2).
"Distinct" pairs are two different cards of one seed deck (none should be rejected); paraphrases
are the hand-written rewordings in tests/test_expand_checks.py (each should be caught).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from test_expand_checks import PARAPHRASES  # noqa: E402

from grader.deckfile import load_deck  # noqa: E402
from grader.embedding import SentenceEncoder  # noqa: E402
from grader.expand.checks import CheckLimits, Prior, outcome, run_checks  # noqa: E402
from grader.models import CardProposal  # noqa: E402
from grader.rubric import plain  # noqa: E402


def main() -> None:
    limits = CheckLimits()
    encoder = SentenceEncoder.load()
    print(f"thresholds: reject >= {limits.duplicate_reject}, flag >= {limits.duplicate_flag}")
    decks = {
        n: load_deck(ROOT / "decks" / f"{n}.yaml").deck
        for n in ("mlops-pipeline", "mlops-foundations")
    }
    for name, deck in decks.items():
        q = encoder.encode([plain(c.question) for c in deck.cards])
        a = encoder.encode([plain(c.answer) for c in deck.cards])
        qq = q @ q.T
        np.fill_diagonal(qq, -1)
        pair = (qq + a @ a.T) / 2
        np.fill_diagonal(pair, -1)
        nearest = pair.max(1)
        print(
            f"{name}: {len(deck.cards)} cards; nearest other card, pair similarity: "
            f"median {np.median(nearest):.3f}, 95th pct {np.percentile(nearest, 95):.3f}, "
            f"max {nearest.max():.3f} (question alone: max {qq.max():.3f}); "
            f"cards flagged against another card: {(nearest >= limits.duplicate_flag).sum()}"
        )
    caught = rejected = 0
    started = time.perf_counter()
    for index, (name, _original, question, answer) in enumerate(PARAPHRASES):
        proposal = CardProposal(
            id=f"p{index}", question=question, answer=answer, strategy="llm", created_at="now"
        )
        checked = run_checks([proposal], Prior(deck=decks[name]), encoder, limits)[0]
        caught += any(c.name == "duplicate" for c in checked.checks)
        rejected += outcome(checked) == "reject"
    elapsed = time.perf_counter() - started
    print(
        f"paraphrases: {len(PARAPHRASES)}; rejected {rejected}, rejected or flagged {caught} "
        f"({elapsed / len(PARAPHRASES) * 1000:.0f} ms per single-proposal check run)"
    )


if __name__ == "__main__":
    main()
