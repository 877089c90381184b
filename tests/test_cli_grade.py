"""`grader grade`, `grader rubric`, `grader config` through CliRunner (stdout and stderr apart).

The LLM is the loopback server; no network.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes import FakeGrader
from typer.testing import CliRunner, Result

import grader.cli.grade as grade_cli
from grader.cli import app
from grader.deckfile import load_deck, save_deck
from grader.llm.callog import CallLog
from grader.models import Card, Deck, fingerprint, verdict_for_score
from grader.rubric import rubric_for
from grader.testing.openai_server import LoopbackOpenAIServer, Reply, wait_until

CARDS = [
    Card(
        id="c1",
        question="What are the three phases of MLOps?",
        answer="- Design\n- Model development\n- Operations",
        footnote="See ml-ops.org.",
    ),
    Card(id="c2", question="What is CI?", answer="Continuous integration of code changes."),
]


def invoke(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=stdin)


def points_in(body: dict[str, Any]) -> list[str]:
    user = body["messages"][-1]["content"]
    rubric = user.split("<rubric>\n", 1)[1].split("\n</rubric>", 1)[0]
    return [line[2:] for line in rubric.splitlines()]


def smart_llm(body: dict[str, Any]) -> Reply:
    """Hits the first rubric point, misses the rest; writes two-point rubrics on request."""
    name = body["tools"][0]["function"]["name"]
    if name == "RubricResponse":
        return Reply.tool_call(name, {"key_points": ["First claim", "Second claim"]})
    points = points_in(body)
    score = round(1 / len(points), 2)
    judged = [
        {"point": p, "status": "hit" if i == 0 else "missed", "evidence": "q"}
        for i, p in enumerate(points)
    ]
    return Reply.tool_call(
        name,
        {
            "key_points": judged,
            "misconceptions": ["Operations means only servers"],
            "score": score,
            "verdict": verdict_for_score(score),
            "feedback": "You named design. Add the other phases.",
        },
    )


@pytest.fixture
def deck(tmp_path: Path) -> Path:
    path = tmp_path / "decks" / "mlops.yaml"
    save_deck(path, Deck(name="MLOps", cards=CARDS))
    return path


@pytest.fixture
def llm(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopbackOpenAIServer]:
    with LoopbackOpenAIServer(responder=smart_llm) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-cli-secret")
        yield server


def test_grade_human_output(deck: Path, llm: LoopbackOpenAIServer) -> None:
    result = invoke("grade", str(deck), "c1", "Design, I think")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert "INCORRECT" in out and "score 0.33" in out and "llm grader" in out
    assert "✓ Design" in out and "✗ Model development" in out and "✗ Operations" in out
    assert "Operations means only servers" in out
    assert "You named design. Add the other phases." in out
    assert out.index("Reference answer:") > out.index("Add the other phases")
    assert "See ml-ops.org." in out
    assert llm.requests[0]["model"] == "gpt-4o-mini"


def test_grade_json_envelope_and_stdin(deck: Path, llm: LoopbackOpenAIServer) -> None:
    result = invoke("grade", str(deck), "c1", "-", "--json", "--model", "m2", stdin="Design\n")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    data = json.loads(result.stdout)
    assert data["version"] == 1 and data["command"] == "grade"
    assert data["data"]["card_id"] == "c1"
    grade = data["data"]["grade"]
    assert grade["verdict"] == "incorrect"
    assert grade["evidence"]["grader"] == "llm" and grade["evidence"]["model"] == "m2"
    assert set(grade) >= {"score", "verdict", "key_points", "misconceptions", "feedback", "reason"}
    assert "Design" in llm.requests[0]["messages"][-1]["content"]
    assert "sk-cli-secret" not in result.stdout


def test_grade_failure_is_ungraded_not_incorrect(
    deck: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    boom = Reply.error(500, "overloaded", headers={"retry-after-ms": "1"})
    with LoopbackOpenAIServer([boom, boom, boom]) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = invoke("grade", str(deck), "c2", "CI merges often")
    assert result.exit_code == 1  # printed, and a script sees the failure
    assert "UNGRADED" in result.stdout
    assert "HTTP 500" in result.stdout
    assert "INCORRECT" not in result.stdout


def test_grade_no_log(deck: Path, llm: LoopbackOpenAIServer, grader_home: Path) -> None:
    assert invoke("grade", str(deck), "c2", "merging", "--no-log").exit_code == 0
    assert CallLog(grader_home).count_calls() == 0
    assert invoke("grade", str(deck), "c2", "merging again").exit_code == 0
    assert CallLog(grader_home).count_calls() == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["c9", "x"], "no card with id 'c9'"),
        (["c1", "   "], "ANSWER is empty"),
        (["c1", "x", "--grader", "llm"], "--grader llm needs an endpoint"),
    ],
)
def test_grade_bad_input_is_one_line(deck: Path, args: list[str], message: str) -> None:
    result = invoke("grade", str(deck), *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr


def test_an_answer_that_is_not_utf8_is_bad_input_not_a_grade(deck: Path) -> None:
    piped = CliRunner().invoke(app, ["grade", str(deck), "c1", "-"], input=b"caf\xe9 design\n")
    assert piped.exit_code == 1
    assert piped.stderr == "error: stdin: not UTF-8 text (byte 0xe9)\n"
    # an argument's undecodable bytes reach Python as lone surrogates
    typed = invoke("grade", str(deck), "c1", "caf\udce9 design")
    assert typed.exit_code == 1
    assert typed.stderr == "error: ANSWER is not UTF-8 text\n"


def test_grade_missing_deck(tmp_path: Path) -> None:
    result = invoke("grade", str(tmp_path / "none.yaml"), "c1", "x")
    assert result.exit_code == 1
    assert "none.yaml: no such file" in result.stderr


def test_rubric_heuristic_then_skip_then_force(deck: Path) -> None:
    result = invoke("rubric", str(deck), "--heuristic")
    assert result.exit_code == 0, result.stderr
    assert "2 rubrics stored" in result.stdout
    cards = load_deck(deck).deck.cards
    assert cards[0].rubric == ["Design", "Model development", "Operations"]
    assert cards[0].rubric_source == "heuristic"

    again = invoke("rubric", str(deck), "--heuristic", "--json")
    data = json.loads(again.stdout)["data"]
    assert data["updated"] == [] and data["skipped_existing"] == 2

    forced = invoke("rubric", str(deck), "--heuristic", "--force", "--card", "c2", "--json")
    assert json.loads(forced.stdout)["data"]["updated"] == ["c2"]


def test_a_rubric_for_an_earlier_answer_is_noted_not_used_and_refreshed(deck: Path) -> None:
    assert invoke("rubric", str(deck), "--heuristic").exit_code == 0
    loaded = load_deck(deck).deck
    first = loaded.cards[0]
    assert first.rubric_answer == fingerprint(first.answer)
    edited = first.model_copy(update={"answer": "Planning, building, and running."})
    save_deck(deck, loaded.model_copy(update={"cards": [edited, *loaded.cards[1:]]}))

    check = invoke("deck", "check", str(deck))
    assert check.exit_code == 0  # it loads and grades; the note says what to do
    assert check.stderr == (
        f"note: {deck.as_posix()}:5: card c1: its rubric was made for an earlier answer and is "
        f"not used; refresh it with: grader rubric {deck.as_posix()} --card c1\n"
    )
    assert rubric_for(load_deck(deck).deck.cards[0]) == ["Planning", "building", "running"]

    refreshed = invoke("rubric", str(deck), "--heuristic", "--json")  # no --force needed
    assert json.loads(refreshed.stdout)["data"]["updated"] == ["c1"]
    card = load_deck(deck).deck.cards[0]
    assert card.rubric == ["Planning", "building", "running"] and not card.rubric_is_stale()
    assert invoke("deck", "check", str(deck)).stderr == ""

    # an author who edits the answer and fixes the rubric by hand keeps that rubric
    loaded = load_deck(deck).deck
    authored = loaded.cards[0].model_copy(
        update={"answer": "Plan, build, run, retire.", "rubric": ["Plan", "Build", "Run", "Retire"]}
    )
    save_deck(deck, loaded.model_copy(update={"cards": [authored, *loaded.cards[1:]]}))
    assert invoke("deck", "check", str(deck)).stderr == ""
    assert rubric_for(load_deck(deck).deck.cards[0]) == ["Plan", "Build", "Run", "Retire"]
    again = invoke("rubric", str(deck), "--heuristic", "--json")
    assert json.loads(again.stdout)["data"]["updated"] == []


def test_rubric_by_llm_is_stored_and_used_for_grading(
    deck: Path, llm: LoopbackOpenAIServer
) -> None:
    result = invoke("rubric", str(deck), "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)["data"]
    assert data["source"] == "llm" and sorted(data["updated"]) == ["c1", "c2"]
    card = load_deck(deck).deck.cards[0]
    assert card.rubric == ["First claim", "Second claim"] and card.rubric_source == "llm"
    assert invoke("grade", str(deck), "c1", "x").exit_code == 0
    assert points_in(llm.requests[-1]) == ["First claim", "Second claim"]


def test_ctrl_c_during_llm_rubrics_does_not_wait_for_the_requests(
    deck: Path, tmp_path: Path
) -> None:
    """The requests hang for a minute; Ctrl-C must end the command long before that, and leave
    the deck as it was."""
    before = deck.read_bytes()
    home = tmp_path / "home"
    with LoopbackOpenAIServer(responder=lambda body: Reply.hang(60)) as server:
        env = {
            **os.environ,
            "GRADER_HOME": str(home),
            "OPENAI_BASE_URL": server.base_url,
            "OPENAI_API_KEY": "sk-x",
        }
        program = Path(sys.executable).parent / "grader"
        # A test run started in the background (`pytest ... &`) ignores SIGINT, and a child
        # inherits an ignored signal across exec: it would never see the Ctrl-C. A handler
        # (unlike SIG_IGN) is reset to the default in the child.
        previous = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            child = subprocess.Popen(
                [str(program), "rubric", str(deck)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        finally:
            signal.signal(signal.SIGINT, previous)
        try:
            assert wait_until(lambda: len(server.requests) == 2, timeout=20)
            child.send_signal(signal.SIGINT)
            _, err = child.communicate(timeout=30)  # the requests would take 60 s
        finally:
            child.kill()
            child.communicate()
    assert child.returncode == 130
    assert err.strip().splitlines()[-1] == "error: interrupted"
    assert deck.read_bytes() == before


def test_rubric_failures_reported_others_saved(deck: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def flaky(body: dict[str, Any]) -> Reply:
        if "What is CI?" in body["messages"][-1]["content"]:
            return Reply.error(400, "context too long")
        return smart_llm(body)

    with LoopbackOpenAIServer(responder=flaky) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = invoke("rubric", str(deck))
    assert result.exit_code == 1
    assert "1 rubrics stored" in result.stdout
    assert "c2: no rubric: HTTP 400" in result.stderr
    assert "error: 1 of 2 rubrics could not be made" in result.stderr
    cards = load_deck(deck).deck.cards
    assert cards[0].rubric_source == "llm" and cards[1].rubric == []


def test_rubric_needs_endpoint_or_heuristic(deck: Path) -> None:
    before = deck.read_bytes()
    result = invoke("rubric", str(deck))
    assert result.exit_code == 1
    assert "--heuristic" in result.stderr
    assert deck.read_bytes() == before


def test_config_never_shows_the_key(monkeypatch: pytest.MonkeyPatch, grader_home: Path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-never-shown")
    grader_home.mkdir(parents=True)
    (grader_home / "config.toml").write_text('model = "local"\n', encoding="utf-8")
    result = invoke("config", "--json")
    assert result.exit_code == 0
    data = json.loads(result.stdout)["data"]
    assert data["api_key"] == "set" and data["model"] == "local"
    assert data["endpoint_configured"] is True
    assert "sk-never-shown" not in result.stdout
    assert (data["base_url"], data["effective_base_url"]) == (None, "https://api.openai.com/v1")
    human = invoke("config")
    assert "model: local" in human.stdout and "sk-never-shown" not in human.stdout
    assert "base_url: https://api.openai.com/v1 (default)" in human.stdout
    monkeypatch.delenv("OPENAI_API_KEY")
    assert "api_key: not set" in invoke("config").stdout


def test_grade_closes_its_grader(deck: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeGrader()
    monkeypatch.setattr(grade_cli, "build_grader", lambda *args: fake)
    assert invoke("grade", str(deck), "c1", "design").exit_code == 0
    assert fake.calls == [("c1", "design")]
    assert fake.closed  # its connections and threads go when the command ends


def test_grade_gives_the_grader_the_deck(deck: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Any] = []

    def build(kind: str, settings: Any, home: Path, cards: Any = ()) -> FakeGrader:
        seen.append([card.id for card in cards])
        return FakeGrader()

    monkeypatch.setattr(grade_cli, "build_grader", build)
    assert invoke("grade", str(deck), "c1", "design").exit_code == 0
    assert seen == [["c1", "c2"]]  # so an answer meant for c2 is caught on c1


def test_the_offline_grader_catches_an_answer_to_a_sibling_card(tmp_path: Path) -> None:
    seed = Path(__file__).resolve().parent.parent / "decks" / "mlops-foundations.yaml"
    result = invoke(
        "grade",
        str(seed),
        "ce62ebcc12d",  # data drift
        "The relationship between inputs and outputs changes over time",
        "--grader",
        "offline",
    )
    assert result.exit_code == 0, result.stderr
    assert "INCORRECT" in result.stdout
    sibling = "\u201cWhat is \u2018concept drift\u2019?\u201d"
    assert f"This answers another card: {sibling}" in result.stdout
