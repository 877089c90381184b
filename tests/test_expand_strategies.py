"""Deterministic strategies on the two seed decks."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import pytest

from grader.deckfile import load_deck
from grader.expand.strategies import (
    BLANK,
    answer_items,
    cloze,
    defined_term,
    list_item,
    propose_deterministic,
    reverse,
)
from grader.models import Card, Deck

DECKS = Path(__file__).resolve().parent.parent / "decks"
NOW = "2026-01-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def pipeline() -> Deck:
    return load_deck(DECKS / "mlops-pipeline.yaml").deck


@pytest.fixture(scope="module")
def foundations() -> Deck:
    return load_deck(DECKS / "mlops-foundations.yaml").deck


def make_id_factory() -> Callable[[], str]:
    counter = itertools.count()
    return lambda: f"p{next(counter)}"


@pytest.mark.parametrize(
    ("question", "term", "qualifier"),
    [
        ("What does ‘data drift’ mean in ML?", "data drift", "in ML"),  # noqa: RUF001
        ("What is ‘concept drift’?", "concept drift", ""),  # noqa: RUF001
        ("What does **deployment** refer to in an ML pipeline?", "deployment", "in an ML pipeline"),
        ("What does deployment in MLOps refer to?", "deployment", "in MLOps"),
        ("What does an ML engineer do?", "ML engineer", ""),
    ],
)
def test_defined_term_finds_the_term(question: str, term: str, qualifier: str) -> None:
    assert defined_term(Card(id="x", question=question, answer="y")) == (term, qualifier)


@pytest.mark.parametrize(
    "question",
    [
        "What is the difference between a **Jupyter notebook** and an **ML pipeline**?",
        "What is typically the **longest step** in the CRISP-DM process?",
        "What is the main idea behind ML engineering?",
        "Why is monitoring ML models essential?",
        "What is the most important idea in MLOps?",
    ],
)
def test_defined_term_skips_non_definitions(question: str) -> None:
    assert defined_term(Card(id="x", question=question, answer="y")) is None


def test_reverse_on_foundations_asks_definition_to_term(foundations: Deck) -> None:
    made = reverse(foundations.cards, make_id_factory(), NOW)
    by_answer = {p.answer: p for p in made}
    assert {"data drift", "concept drift", "data skew"} <= set(by_answer)
    drift = by_answer["data drift"]
    assert drift.question == (
        "Which term (in ML) is described by: “The input data distribution changes over time.”?"
    )
    source = next(c for c in foundations.cards if "data drift" in c.question)
    assert drift.builds_on == [source.id]
    assert drift.strategy == "reverse"
    assert drift.created_at == NOW


def test_list_item_one_card_per_item(pipeline: Deck) -> None:
    made = list_item(pipeline.cards, make_id_factory(), NOW)
    lifecycle = next(
        c for c in pipeline.cards if c.question == "What is the real ML life cycle in MLOps?"
    )
    items = answer_items(lifecycle)
    assert items[:2] == ["Define business goal", "Get data"]
    mine = [p for p in made if p.builds_on == [lifecycle.id]]
    assert [p.answer for p in mine] == items
    for proposal, item in zip(mine, items, strict=True):
        assert proposal.question.count(BLANK) == 1
        assert f"- {item}\n" not in proposal.question
    # Item-major order: the first proposals come from different cards.
    assert len({p.builds_on[0] for p in made[:10]}) == 10


def test_list_item_splits_short_enumerations(foundations: Deck) -> None:
    phases = next(c for c in foundations.cards if "three major phases" in c.question)
    assert answer_items(phases) == ["Design", "Model Development", "Operations"]
    prose = next(c for c in foundations.cards if "training a model not enough" in c.question)
    assert answer_items(prose) == []


def test_list_item_skips_key_points_split_from_coordinated_verbs(foundations: Deck) -> None:
    engineer = next(
        c for c in foundations.cards if "responsibility of a data engineer" in c.question
    )
    assert engineer.answer == "Builds and manages data pipelines and ETL systems."
    assert answer_items(engineer) == []
    assert list_item([engineer], make_id_factory(), NOW) == []


def test_cloze_blanks_a_key_term_in_the_footnote(pipeline: Deck) -> None:
    made = cloze(pipeline.cards, make_id_factory(), NOW)
    assert len(made) >= 30
    for proposal in made:
        source = pipeline.card(proposal.builds_on[0])
        assert source is not None and source.footnote
        assert proposal.question.startswith("Fill in the blank: ")
        assert BLANK in proposal.question
        filled = proposal.question.removeprefix("Fill in the blank: ").replace(
            BLANK, proposal.answer
        )
        assert filled.lower() == " ".join(source.footnote.replace("**", "").split()).lower()
    answers = {p.answer.lower() for p in made}
    assert "mlops maturity" in answers
    assert "crisp-dm" in answers
    # what the whole deck is about (in more than 20% of its cards) is never the blank
    share = sum("mlops" in f"{c.question} {c.answer} {c.footnote}".lower() for c in pipeline.cards)
    assert share > 0.2 * len(pipeline.cards)
    assert "mlops" not in answers


def test_deterministic_is_repeatable_and_interleaved(pipeline: Deck) -> None:
    first = propose_deterministic(
        pipeline.cards, ["reverse", "list-item", "cloze"], make_id_factory(), NOW
    )
    second = propose_deterministic(
        pipeline.cards, ["reverse", "list-item", "cloze"], make_id_factory(), NOW
    )
    assert [p.model_dump() for p in first] == [p.model_dump() for p in second]
    assert [p.strategy for p in first[:3]] == ["reverse", "list-item", "cloze"]
    assert len({p.id for p in first}) == len(first)
    for proposal in first:
        Card(id="x", question=proposal.question, answer=proposal.answer)  # valid as a deck card
