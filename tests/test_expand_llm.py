"""The LLM proposer over real HTTP against the loopback OpenAI-compatible server."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from grader.cli import app
from grader.deckfile import load_deck
from grader.embedding import SentenceEncoder
from grader.expand.checks import CheckLimits
from grader.expand.llm import expand_llm, regenerate
from grader.expand.proposals import ProposalSet, load_proposals, save_proposals
from grader.llm.prompts import load_prompt
from grader.models import CardProposal
from grader.settings import Settings
from grader.testing.openai_server import LoopbackOpenAIServer, Reply

DECKS = Path(__file__).resolve().parent.parent / "decks"
MODEL = "gpt-4o-mini"


@pytest.fixture(scope="module")
def encoder() -> SentenceEncoder:
    return SentenceEncoder.load()


@pytest.fixture
def deck(tmp_path: Path) -> Path:
    path = tmp_path / "mlops-foundations.yaml"
    shutil.copy(DECKS / "mlops-foundations.yaml", path)
    return path


def settings(server: LoopbackOpenAIServer, **extra: Any) -> Settings:
    return Settings(base_url=server.base_url, model=MODEL, max_retries=0, **extra)


def asked(body: dict[str, Any]) -> tuple[int, list[str]]:
    user = body["messages"][-1]["content"]
    count = int(re.search(r"Propose exactly (\d+) new cards", user).group(1))  # type: ignore[union-attr]
    return count, re.findall(r'<card id="([^"]+)">', user)


TOPICS = [
    (
        "Which monitoring signal reveals data drift before accuracy drops?",
        "- Input distributions\n- Feature statistics",
    ),
    (
        "Why can a model degrade in production even if its code never changes?",
        "Because data drift or concept drift changes what it sees.",
    ),
    ("Which role builds the ETL systems that feed model training?", "The data engineer."),
    (
        "What does concept drift change that data drift does not?",
        "The relationship between inputs and outputs, not only the input distribution.",
    ),
    (
        "Why should learning cloud ML platforms start early?",
        "To prepare for industry work, where they are standard.",
    ),
    ("What makes debugging an ML system reproducible?", "Version control of models and datasets."),
    ("Which lifecycle phase includes decommissioning a model?", "Operations."),
]


def good_cards(count: int, ids: list[str], offset: int = 0) -> list[dict[str, Any]]:
    return [
        {
            "question": TOPICS[(offset + i) % len(TOPICS)][0],
            "answer": TOPICS[(offset + i) % len(TOPICS)][1],
            "builds_on": [ids[i % len(ids)]],
            "tags": ["ml"],
            "rationale": "Connects two cards the deck asks separately.",
        }
        for i in range(count)
    ]


def test_valid_batches_run_concurrently_and_are_stored(
    deck: Path, tmp_path: Path, encoder: SentenceEncoder
) -> None:
    seen: list[int] = []

    def responder(body: dict[str, Any]) -> Reply:
        count, ids = asked(body)
        offset = 0 if count == 5 else 5
        seen.append(count)
        return Reply.tool_call(
            "ProposedCards",
            {"cards": good_cards(count, ids, offset)},
            prompt_tokens=900,
            completion_tokens=300,
        )

    with LoopbackOpenAIServer(responder=responder, delay=0.2) as server:
        result = expand_llm(
            deck,
            7,
            settings=settings(server),
            home=tmp_path / "home",
            encoder=encoder,
            limits=CheckLimits(),
            instructions="Focus on monitoring.",
        )
        bodies = server.requests
    assert sorted(seen) == [2, 5]
    assert len(result.proposed) == 7 and result.rejected == [] and result.failures == []
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (1800, 600)
    assert result.cost_usd == pytest.approx((1800 * 0.15 + 600 * 0.6) / 1e6)
    template = load_prompt("expand")
    store = load_proposals(deck)
    assert [p.id for p in store.proposals] == [p.id for p in result.proposed]
    for proposal in store.proposals:
        assert (proposal.strategy, proposal.model, proposal.prompt_hash) == (
            "llm",
            MODEL,
            template.hash,
        )
        assert proposal.status == "pending"
    body = bodies[0]
    assert body["model"] == MODEL and body["temperature"] == 0
    assert body["tools"][0]["function"]["name"] == "ProposedCards"
    user = body["messages"][-1]["content"]
    assert "Focus on monitoring." in user
    deck_cards = load_deck(deck).deck.cards
    assert all(f'<card id="{c.id}">' in user for c in deck_cards)


def test_duplicates_and_leaks_are_caught(
    deck: Path, tmp_path: Path, encoder: SentenceEncoder
) -> None:
    existing = load_deck(deck).deck.cards
    drift = next(c for c in existing if "data drift" in c.question)
    cards: list[dict[str, Any]] = [
        # A rewording of a deck card.
        {
            "question": "In machine learning, what is data drift?",
            "answer": "The distribution of the input data shifts over time.",
            "builds_on": [drift.id],
            "rationale": "r",
        },
        # The answer given away by the question.
        {
            "question": "Which term names data skew, sudden shifts in data not seen in training?",
            "answer": "data skew",
            "builds_on": [drift.id],
            "rationale": "r",
        },
        # A good card, then the same card reworded within the batch.
        {
            "question": "Why can a model degrade in production even if its code never changes?",
            "answer": "Because data drift or concept drift changes what it sees.",
            "builds_on": [drift.id],
            "rationale": "r",
        },
        {
            "question": "How can a model get worse in production when its code never changed?",
            "answer": "Data drift or concept drift change what it sees.",
            "builds_on": [drift.id],
            "rationale": "r",
        },
        # Empty answer after trimming is a schema failure, so the model is re-asked; here: overlong.
        {
            "question": "Summarise ML engineering.",
            "answer": "word " * 700,
            "builds_on": [drift.id],
            "rationale": "r",
        },
    ]
    with LoopbackOpenAIServer([Reply.tool_call("ProposedCards", {"cards": cards})]) as server:
        result = expand_llm(
            deck, 5, settings=settings(server), home=None, encoder=encoder, limits=CheckLimits()
        )
    assert [p.question for p in result.proposed] == [cards[2]["question"]]
    reasons = {
        p.question: next(c for c in p.checks if c.outcome == "reject") for p in result.rejected
    }
    assert reasons[cards[0]["question"]].name == "duplicate"
    assert f"card {drift.id}" in reasons[cards[0]["question"]].reason
    assert reasons[cards[1]["question"]].name == "leak"
    assert reasons[cards[3]["question"]].name == "duplicate"
    assert "in this batch" in reasons[cards[3]["question"]].reason
    assert reasons[cards[4]["question"]].name == "length"
    assert result.rejected_by_check() == {"duplicate": 2, "leak": 1, "length": 1}
    assert len(load_proposals(deck).proposals) == 1


def test_unknown_grounding_ids_are_re_asked(
    deck: Path, tmp_path: Path, encoder: SentenceEncoder
) -> None:
    ids = [c.id for c in load_deck(deck).deck.cards]
    bad = good_cards(1, ["c-invented"])
    with LoopbackOpenAIServer(
        [
            Reply.tool_call("ProposedCards", {"cards": bad}),
            Reply.tool_call("ProposedCards", {"cards": good_cards(1, ids)}),
        ]
    ) as server:
        result = expand_llm(
            deck, 1, settings=settings(server), home=None, encoder=encoder, limits=CheckLimits()
        )
        second = server.requests[1]["messages"]
    assert [p.builds_on for p in result.proposed] == [[ids[0]]]
    assert any("unknown card ids ['c-invented']" in str(m.get("content")) for m in second)


def test_a_failed_call_loses_nothing_already_proposed(
    deck: Path, tmp_path: Path, encoder: SentenceEncoder
) -> None:
    earlier = CardProposal(
        id="pearlier",
        question="Which phase includes stakeholder engagement?",
        answer="Design",
        strategy="reverse",
        created_at="2026-01-01T00:00:00+00:00",
    )
    save_proposals(deck, ProposalSet(deck=deck.name, proposals=[earlier]))

    def responder(body: dict[str, Any]) -> Reply:
        count, ids = asked(body)
        if count == 2:
            return Reply.error(500, "model crashed")
        return Reply.tool_call("ProposedCards", {"cards": good_cards(count, ids)})

    with LoopbackOpenAIServer(responder=responder) as server:
        result = expand_llm(
            deck, 7, settings=settings(server), home=None, encoder=encoder, limits=CheckLimits()
        )
    assert len(result.proposed) == 5
    assert len(result.failures) == 1 and "HTTP 500" in result.failures[0]
    stored = load_proposals(deck).proposals
    assert [p.id for p in stored] == ["pearlier", *(p.id for p in result.proposed)]


def test_cli_auto_uses_the_endpoint_and_reports_usage(
    deck: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def responder(body: dict[str, Any]) -> Reply:
        count, ids = asked(body)
        return Reply.tool_call(
            "ProposedCards",
            {"cards": good_cards(count, ids)},
            prompt_tokens=1000,
            completion_tokens=250,
        )

    runner = CliRunner()
    with LoopbackOpenAIServer(responder=responder) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-value")
        monkeypatch.setenv("GRADER_MODEL", MODEL)
        result = runner.invoke(app, ["expand", str(deck), "-n", "3"])
        failing = LoopbackOpenAIServer([Reply.error(500, "down")])
    assert result.exit_code == 0, result.stderr
    assert "proposed 3 of 3" in result.stdout
    assert f"{MODEL}: 1000 prompt + 250 completion tokens; estimated cost $0.0003" in result.stderr
    assert "deterministic" not in result.stderr
    assert "sk-test-secret-value" not in result.stdout + result.stderr

    with failing:
        monkeypatch.setenv("OPENAI_BASE_URL", failing.base_url)
        down = runner.invoke(app, ["expand", str(deck), "-n", "2", "--json"])
    assert down.exit_code == 1
    assert json.loads(down.stdout)["data"]["failures"][0].startswith("HTTP 500")
    assert len(load_proposals(deck).proposals) == 3


def test_regenerate_in_review(deck: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    ids = [c.id for c in load_deck(deck).deck.cards]
    first = CardProposal(
        id="pold",
        question="What is ML?",
        answer="Machine learning, a way to learn from data.",
        builds_on=[ids[0]],
        strategy="llm",
        created_at="2026-01-01T00:00:00+00:00",
        tags=["ml"],
    )
    save_proposals(deck, ProposalSet(deck=deck.name, proposals=[first]))
    better = {
        "question": "Which lifecycle phase includes decommissioning a model?",
        "answer": "Operations.",
        "builds_on": [ids[8]],
        "rationale": "Asks for the phase from one of its tasks.",
    }
    with LoopbackOpenAIServer([Reply.tool_call("ProposedCard", better)]) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = CliRunner().invoke(
            app,
            ["review", str(deck), "--reviewer", "ada"],
            input="g\nask about a lifecycle phase\na\n",
        )
        body = server.requests[0]
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "<feedback>\nask about a lifecycle phase\n</feedback>" in body["messages"][-1]["content"]
    store = load_proposals(deck)
    old, new = store.proposals
    assert (old.status, old.reviewed_by) == ("rejected", "ada")
    assert old.reject_reason == f"regenerated as {new.id}: ask about a lifecycle phase"
    assert (new.status, new.question, new.tags) == ("approved", better["question"], ["ml"])
    assert "review done: approved 1, regenerated 1" in result.stdout

    direct = Settings(base_url="http://127.0.0.1:9/v1", model=MODEL, max_retries=0, timeout=2)
    with pytest.raises(Exception, match="cannot connect"):
        regenerate(deck, first, "x", direct, None)
