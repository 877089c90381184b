"""The LLM proposer against recorded HTTP exchanges (vcrpy cassettes via pytest-recording).

Where the cassettes come from: recorded against the loopback OpenAI-compatible server
(`grader.testing.openai_server`) with the scripted replies below, not against a hosted model. They
pin the exact request bodies (prompt, schema, parameters): a changed prompt or deck fails here
instead of silently replaying an old answer. The loopback server listens on a random port, so
these cassettes match on method, scheme, path, query and body, not host and port.

Re-record against a real endpoint: the one command in README.md, section Tests (OPENAI_API_KEY,
OPENAI_BASE_URL, GRADER_MODEL, `--record-mode=rewrite`); without those variables it re-records
against the loopback server.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from grader.deckfile import load_deck
from grader.embedding import SentenceEncoder
from grader.expand.checks import CheckLimits
from grader.expand.llm import expand_llm, regenerate
from grader.models import CardProposal
from grader.settings import Settings
from grader.testing.openai_server import LoopbackOpenAIServer, Reply

DECKS = Path(__file__).resolve().parent.parent / "decks"
LOOPBACK_MODEL = "gpt-4o-mini"
REPLAY_URL = "http://127.0.0.1:9/v1"
"""Nothing listens here: in replay mode every request must come from a cassette."""


@pytest.fixture(scope="module")
def vcr_config(vcr_config: dict[str, Any]) -> dict[str, Any]:
    return {**vcr_config, "match_on": ["method", "scheme", "path", "query", "body"]}


def _reply(body: dict[str, Any]) -> Reply:
    user = body["messages"][-1]["content"]
    ids = re.findall(r'<card id="([^"]+)">', user)
    tool = body["tools"][0]["function"]["name"]
    card = {
        "question": "Why can a model degrade in production even if its code never changes?",
        "answer": "Because data drift or concept drift changes the data it sees.",
        "builds_on": ids[9:11],
        "tags": ["ml"],
        "rationale": "Links the drift cards to monitoring.",
    }
    if tool == "ProposedCard":
        return Reply.tool_call(tool, card, prompt_tokens=800, completion_tokens=90)
    second = {
        "question": "Which lifecycle phase includes decommissioning a model?",
        "answer": "Operations.",
        "builds_on": ids[8:9],
        "tags": ["ml"],
        "rationale": "Asks for the phase from one of its tasks.",
    }
    return Reply.tool_call(
        tool, {"cards": [card, second]}, prompt_tokens=1500, completion_tokens=180
    )


@pytest.fixture
def endpoint(
    record_mode: str, record_endpoint: dict[str, str] | None, request: pytest.FixtureRequest
) -> Iterator[Settings]:
    if record_mode == "none":
        _, model = request.getfixturevalue("recorded_endpoint")
        yield Settings(base_url=REPLAY_URL, model=model, max_retries=0)
    elif record_endpoint:
        yield Settings.model_validate(record_endpoint)
    else:
        with LoopbackOpenAIServer(responder=_reply) as server:
            yield Settings(base_url=server.base_url, model=LOOPBACK_MODEL, max_retries=0)


@pytest.fixture
def deck(tmp_path: Path) -> Path:
    path = tmp_path / "mlops-foundations.yaml"
    shutil.copy(DECKS / "mlops-foundations.yaml", path)
    return path


@pytest.mark.vcr
def test_expand_from_cassette(deck: Path, endpoint: Settings) -> None:
    result = expand_llm(
        deck, 2, settings=endpoint, home=None, encoder=SentenceEncoder.load(), limits=CheckLimits()
    )
    assert result.failures == []
    assert len(result.proposed) + len(result.rejected) == 2
    ids = {c.id for c in load_deck(deck).deck.cards}
    for proposal in result.proposed:
        assert proposal.strategy == "llm" and proposal.model == endpoint.model
        assert proposal.question.strip() and proposal.answer.strip()
        assert set(proposal.builds_on) <= ids
    assert result.usage.total_tokens > 0


@pytest.mark.vcr
def test_regenerate_from_cassette(deck: Path, endpoint: Settings) -> None:
    cards = load_deck(deck).deck.cards
    old = CardProposal(
        id="pold",
        question="What is ML?",
        answer="Machine learning.",
        builds_on=[cards[9].id],
        strategy="llm",
        created_at="2026-01-01T00:00:00+00:00",
    )
    new = regenerate(deck, old, "Ask about why models degrade in production.", endpoint, None)
    assert new.id != old.id and new.strategy == "llm" and new.model == endpoint.model
    assert new.question != old.question
    assert set(new.builds_on) <= {c.id for c in cards}
