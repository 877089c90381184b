"""Each automatic check, and the duplicate thresholds measured on the seed decks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from grader.deckfile import load_deck
from grader.embedding import SentenceEncoder
from grader.expand.checks import (
    CheckLimits,
    Prior,
    check_count,
    check_leak,
    check_length,
    check_schema,
    outcome,
    run_checks,
)
from grader.expand.similarity import LexicalEncoder
from grader.models import Card, CardProposal, Deck
from grader.rubric import plain

DECKS = Path(__file__).resolve().parent.parent / "decks"
NOW = "2026-01-01T00:00:00+00:00"

# Reworded versions of seed cards (question and answer both reworded), written by hand.
PARAPHRASES = [
    (
        "mlops-pipeline",
        "What does MLOps stand for?",
        "What is meant by the term MLOps?",
        "How teams build, ship, watch and update ML models in practice",
    ),
    (
        "mlops-pipeline",
        "What is the real ML life cycle in MLOps?",
        "Which stages make up the actual machine-learning lifecycle in MLOps?",
        "- Set a business goal\n- Collect data\n- Train\n- Test\n- Deploy\n- Monitor\n"
        "- Retrain\n- Repeat",
    ),
    (
        "mlops-pipeline",
        "Why do we need MLOps?",
        "What is the reason MLOps is needed?",
        "To handle many datasets, many models, many users and frequent updates",
    ),
    (
        "mlops-pipeline",
        "What is an ML pipeline?",
        "How would you define a machine-learning pipeline?",
        "The complete chain from raw data to a running prediction system",
    ),
    (
        "mlops-pipeline",
        "What is the purpose of data cleaning in an ML pipeline?",
        "Why do we clean data in a machine learning pipeline?",
        "To fix errors, missing values and inconsistencies so the model learns from good data",
    ),
    (
        "mlops-pipeline",
        "What is data augmentation used for?",
        "Why would you use data augmentation?",
        "To create more training examples from the existing data",
    ),
    (
        "mlops-pipeline",
        "What does feature scaling achieve?",
        "What is the effect of scaling features?",
        "It puts features on comparable ranges",
    ),
    (
        "mlops-pipeline",
        "What two aspects should be monitored after deployment?",
        "After deploying, which two things need monitoring?",
        "- Software performance\n- Model performance",
    ),
    (
        "mlops-pipeline",
        "What does **CRISP-DM** stand for?",
        "What is CRISP-DM short for?",
        "Cross-Industry Standard Process for Data Mining",
    ),
    (
        "mlops-pipeline",
        "List the **six steps** of the CRISP-DM workflow.",
        "Name the six stages of the CRISP-DM process.",
        "- Business understanding\n- Data understanding\n- Data preparation\n- Modelling\n"
        "- Evaluation\n- Deployment",
    ),
    (
        "mlops-pipeline",
        "What is a **container** in the context of cloud ML systems?",
        "In cloud ML, what is a container?",
        "A packaged environment where the application, the model and its libraries run together",
    ),
    (
        "mlops-pipeline",
        "What is **Level 0** in MLOps maturity?",
        "Describe MLOps maturity level 0.",
        "- No MLOps\n- Everything done by hand\n- No monitoring",
    ),
    (
        "mlops-foundations",
        "What does ‘data drift’ mean in ML?",  # noqa: RUF001
        "In machine learning, what is data drift?",
        "The distribution of the input data shifts over time.",
    ),
    (
        "mlops-foundations",
        "What is ‘concept drift’?",  # noqa: RUF001
        "Define concept drift.",
        "The relationship between inputs and outputs changes over time.",
    ),
    (
        "mlops-foundations",
        "Why is monitoring ML models essential?",
        "Why must ML models be monitored?",
        "To catch drops in performance, data problems and system failures.",
    ),
    (
        "mlops-foundations",
        "What does an ML engineer do?",
        "What is the job of an ML engineer?",
        "Deploys models, manages APIs and tunes runtime performance.",
    ),
    (
        "mlops-foundations",
        "Why is version control important in ML systems?",
        "Why does an ML system need version control?",
        "To track changes to models and data for debugging and reproducibility.",
    ),
    (
        "mlops-foundations",
        "What are the three major phases of the ML lifecycle?",
        "Name the three main phases of the machine learning lifecycle.",
        "Design, model development and operations.",
    ),
]


def proposal(question: str, answer: str, **fields: object) -> CardProposal:
    data: dict[str, object] = {
        "id": fields.pop("id", "p1"),
        "question": question,
        "answer": answer,
        "strategy": "llm",
        "created_at": NOW,
    }
    data.update(fields)
    return CardProposal.model_validate(data)


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder.load()


@pytest.fixture(scope="module")
def decks() -> dict[str, Deck]:
    return {
        name: load_deck(DECKS / f"{name}.yaml").deck
        for name in ("mlops-pipeline", "mlops-foundations")
    }


def small_deck() -> Deck:
    return Deck(
        name="t",
        cards=[
            Card(id="c1", question="What is data drift?", answer="The input distribution changes."),
            Card(
                id="c2", question="What is a container?", answer="An isolated runtime environment."
            ),
        ],
    )


def test_schema_rejects_invalid_and_flags_unknown_grounding() -> None:
    deck = small_deck()
    blank = proposal("   ", "x")
    assert check_schema(blank, deck)[0].outcome == "reject"
    assert "question" in check_schema(blank, deck)[0].reason
    unknown = proposal("Q?", "A", builds_on=["c1", "nope"])
    [flag] = check_schema(unknown, deck)
    assert (flag.outcome, flag.reason) == ("flag", "builds on card ids not in the deck: nope")
    assert check_schema(proposal("Q?", "A", builds_on=["c1"]), deck) == []


def test_length_rejects_empty_and_flags_or_rejects_overlong() -> None:
    limits = CheckLimits()
    [empty] = check_length(proposal("Q?", " "), limits)
    assert (empty.outcome, empty.reason) == ("reject", "answer is empty")
    [long_q] = check_length(proposal("Why? " * 120, "A"), limits)
    assert long_q.outcome == "flag" and "question is long" in long_q.reason
    [huge] = check_length(proposal("Q?", "word " * 600), limits)
    assert huge.outcome == "reject" and "limit 2500" in huge.reason
    assert check_length(proposal("What is X?", "Y"), limits) == []


@pytest.mark.parametrize(
    ("question", "answer", "expected"),
    [
        ("What is data drift, the change in input distribution?", "data drift", "reject"),
        (
            "Name the steps: - Get data - Train models",
            "- Get data\n- Train models\n- Deploy",
            "reject",
        ),
        (
            "Is the first step business understanding or data prep?",
            "business understanding",
            "flag",
        ),
        ("True or false: you deploy a model.", "FALSE", None),
        (
            "Which term means the input data distribution changes over time?",
            "input data distribution changes over time",
            "reject",
        ),
        (
            "What describes inputs whose distribution changes with time?",
            "inputs distribution changes time",
            "flag",
        ),
        ("What is data drift?", "The input distribution changes over time.", None),
    ],
)
def test_leak(question: str, answer: str, expected: str | None) -> None:
    found = check_leak(proposal(question, answer), CheckLimits())
    assert (found[0].outcome if found else None) == expected


def test_count_mismatch_is_flagged() -> None:
    [flag] = check_count(proposal("Name the three main phases.", "- Design\n- Operations"))
    assert flag.name == "answerable" and "asks for 3 but the answer lists 2" in flag.reason
    assert check_count(proposal("Name the two phases.", "- Design\n- Operations")) == []


def test_seed_cards_pass_the_content_checks(decks: dict[str, Deck]) -> None:
    """The authors' own cards, seen as proposals, raise no leak/length/schema rejection."""
    limits = CheckLimits()
    for deck in decks.values():
        for card in deck.cards:
            candidate = proposal(card.question, card.answer, footnote=card.footnote)
            found = check_schema(candidate, deck) + check_length(candidate, limits)
            found += check_leak(candidate, limits)
            assert [c for c in found if c.outcome == "reject"] == [], card.id


def test_unrelated_answer_is_flagged_as_unanswerable(encoder: SentenceEncoder) -> None:
    checked = run_checks(
        [proposal("What does a container bundle together?", "Bananas are yellow fruit.")],
        Prior(deck=small_deck()),
        encoder,
    )
    assert [c.name for c in checked[0].checks] == ["answerable"]
    assert outcome(checked[0]) == "flag"


def test_paraphrased_seed_cards_are_caught(
    encoder: SentenceEncoder, decks: dict[str, Deck]
) -> None:
    caught = rejected = 0
    for name, deck in decks.items():
        mine = [(i, p) for i, p in enumerate(PARAPHRASES) if p[0] == name]
        batch = [proposal(question, answer, id=f"p{i}") for i, (_, _, question, answer) in mine]
        for checked, (_, (_, original, _, _)) in zip(
            run_checks(batch, Prior(deck=deck), encoder), mine, strict=True
        ):
            duplicate = [c for c in checked.checks if c.name == "duplicate"]
            if duplicate:
                caught += 1
                source = next(c for c in deck.cards if c.question == original)
                assert source.id in duplicate[0].reason
            rejected += outcome(checked) == "reject"
    # Measured: 9 of 18 rejected, 15 of 18 rejected or flagged (docs/expand-review.md).
    assert caught >= 14
    assert rejected >= 8


def test_distinct_seed_cards_are_not_rejected_as_duplicates(
    encoder: SentenceEncoder, decks: dict[str, Deck]
) -> None:
    limits = CheckLimits()
    for deck in decks.values():
        questions = encoder.encode([plain(c.question) for c in deck.cards])
        answers = encoder.encode([plain(c.answer) for c in deck.cards])
        pair = (questions @ questions.T + answers @ answers.T) / 2
        np.fill_diagonal(pair, -1.0)
        assert float(pair.max()) < limits.duplicate_reject


def test_duplicates_within_a_batch_and_against_rejected(encoder: SentenceEncoder) -> None:
    rejected = proposal(
        "Which tool packages an app with its libraries?",
        "A container",
        id="old",
        status="rejected",
        reject_reason="too vague",
    )
    batch = [
        proposal("Why monitor a model after deployment?", "To catch performance drops.", id="a"),
        proposal(
            "Why should a deployed model be monitored?", "To catch drops in performance.", id="b"
        ),
        proposal("Which tool packages an app with its libraries?", "A container", id="c"),
        proposal("What is concept drift?", "Input-output relationship changes.", id="d"),
    ]
    checked = run_checks(batch, Prior(deck=small_deck(), proposals=[rejected]), encoder)
    by_id = {p.id: p for p in checked}
    assert outcome(by_id["a"]) == "pass"
    assert outcome(by_id["b"]) == "reject"
    assert (
        "proposal a" in by_id["b"].checks[0].reason
        and "in this batch" in by_id["b"].checks[0].reason
    )
    assert outcome(by_id["c"]) == "reject"
    [duplicate] = [c for c in by_id["c"].checks if c.name == "duplicate"]
    assert "previously rejected proposal old: too vague" in duplicate.reason
    assert outcome(by_id["d"]) == "pass"


def test_lexical_fallback_catches_rewording_of_the_same_words() -> None:
    from grader.expand.similarity import LEXICAL_LIMITS

    checked = run_checks(
        [proposal("What is data drift exactly?", "The input distribution changes.")],
        Prior(deck=small_deck()),
        LexicalEncoder(),
        LEXICAL_LIMITS,
    )
    assert outcome(checked[0]) == "reject"
    assert "card c1" in checked[0].checks[0].reason
