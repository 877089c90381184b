"""`grader expand` and `grader review` through the CLI, offline: the issue's done-when flow."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from grader.cli import app
from grader.deckfile import load_deck
from grader.expand.proposals import load_proposals, proposals_path

DECKS = Path(__file__).resolve().parent.parent / "decks"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def lexical(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast lexical encoder, for tests about the CLI rather than about similarity."""
    from grader.expand import similarity

    monkeypatch.setattr(
        similarity,
        "load_encoder",
        lambda notice: (similarity.LexicalEncoder(), similarity.LEXICAL_LIMITS),
    )


@pytest.fixture
def deck(tmp_path: Path) -> Path:
    path = tmp_path / "mlops-pipeline.yaml"
    shutil.copy(DECKS / "mlops-pipeline.yaml", path)
    return path


def test_expand_review_check_offline(runner: CliRunner, deck: Path) -> None:
    result = runner.invoke(app, ["expand", str(deck), "-n", "10"])
    assert result.exit_code == 0, result.stderr
    assert (
        "no LLM endpoint configured; proposing with the deterministic strategies" in result.stderr
    )
    assert "proposed 10 of 10" in result.stdout
    assert f"review with: grader review {deck}" in result.stdout
    store = load_proposals(deck)
    assert len(store.proposals) == 10
    assert {p.strategy for p in store.proposals} == {"reverse", "list-item", "cloze"}
    assert {p.status for p in store.proposals} == {"pending"}

    listed = runner.invoke(app, ["review", str(deck), "--list", "--json"])
    assert listed.exit_code == 0
    envelope = json.loads(listed.stdout)
    assert (envelope["version"], envelope["command"]) == (1, "review list")
    ids = [p["id"] for p in envelope["data"]["proposals"]]
    assert ids == [p.id for p in store.proposals]

    approved = runner.invoke(
        app, ["review", str(deck), "--approve", ids[0], ids[1], "--reviewer", "ada"]
    )
    assert approved.exit_code == 0, approved.stderr
    assert f"{ids[0]}: approved as card c" in approved.stdout
    rejected = runner.invoke(app, ["review", str(deck), "--reject", ids[2], "--reason", "too easy"])
    assert rejected.exit_code == 0
    assert f"{ids[2]}: rejected" in rejected.stdout

    again = runner.invoke(app, ["review", str(deck), "--approve", ids[0]])
    assert again.exit_code == 0, again.stderr  # approving twice is a no-op
    crossed = runner.invoke(app, ["review", str(deck), "--approve", ids[2], "--reject", ids[0]])
    assert crossed.exit_code == 2  # one action per call
    refused = runner.invoke(app, ["review", str(deck), "--approve", ids[2], ids[0]])
    assert refused.exit_code == 1
    assert f"{ids[2]}: already rejected by" in refused.stdout
    assert refused.stderr == f"error: not approved, decided the other way earlier: {ids[2]}\n"
    refused = runner.invoke(app, ["review", str(deck), "--reject", ids[1]])
    assert refused.exit_code == 1
    assert refused.stderr == f"error: not rejected, decided the other way earlier: {ids[1]}\n"

    cards = load_deck(deck).deck.cards
    new = [c for c in cards if c.provenance and c.provenance.kind == "proposed"]
    assert [c.provenance.proposal_id for c in new if c.provenance] == ids[:2]
    assert all(c.provenance and c.provenance.approved_by == "ada" for c in new)

    check = runner.invoke(app, ["deck", "check", str(deck)])
    assert check.exit_code == 0, check.stdout + check.stderr

    pending = runner.invoke(app, ["review", str(deck), "--list"])
    assert ids[0] not in pending.stdout and ids[3] in pending.stdout

    # A second run proposes new cards: nothing approved, pending or rejected comes back.
    again = runner.invoke(app, ["expand", str(deck), "-n", "5", "--json"])
    assert again.exit_code == 0, again.stderr
    data = json.loads(again.stdout)["data"]
    assert data["summary"]["proposed"] == 5
    assert data["summary"]["rejected_by_check"]["duplicate"] >= 10
    earlier = {" ".join(p.question.split()) for p in store.proposals}
    assert not earlier & {" ".join(p["question"].split()) for p in data["proposed"]}


@pytest.mark.usefixtures("lexical")
def test_expand_strategy_from_and_tag(runner: CliRunner, deck: Path) -> None:
    source = load_deck(deck).deck.cards[1]  # the ML life cycle list
    result = runner.invoke(
        app,
        ["expand", str(deck), "-n", "3", "--strategy", "list-item", "--from", source.id, "--json"],
    )
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""  # an explicit strategy needs no notice
    proposed = json.loads(result.stdout)["data"]["proposed"]
    assert [p["builds_on"] for p in proposed] == [[source.id]] * 3
    assert [p["answer"] for p in proposed] == ["Define business goal", "Get data", "Train models"]

    missing = runner.invoke(app, ["expand", str(deck), "--from", "nope"])
    assert missing.exit_code == 1
    assert (
        missing.stderr.splitlines()[-1] == "error: no card 'nope' in deck 'MLOps pipeline' (--from)"
    )
    assert missing.stdout == ""
    untagged = runner.invoke(app, ["expand", str(deck), "--tag", "nothing-has-this"])
    assert untagged.exit_code == 1
    assert "no card tagged 'nothing-has-this'" in untagged.stderr


def test_review_usage_errors(runner: CliRunner, deck: Path) -> None:
    for args, message, code in [
        (["--approve"], "--approve needs at least one proposal id", 2),
        (["p1"], "proposal ids need --approve or --reject", 2),
        (["--approve", "--reject", "p1"], "use one of --approve, --reject, --list", 2),
        (["--approve", "p1", "--reason", "x"], "--reason goes with --reject", 2),
        (["--approve", "p1"], "no proposal 'p1'", 1),
    ]:
        result = runner.invoke(app, ["review", str(deck), *args])
        assert result.exit_code == code, args
        assert message in result.stderr
        assert "Traceback" not in result.stderr
    missing = runner.invoke(app, ["review", str(deck.with_name("none.yaml")), "--list"])
    assert missing.exit_code == 1
    assert "none.yaml: no such file" in missing.stderr


def test_review_nothing_pending(runner: CliRunner, deck: Path) -> None:
    result = runner.invoke(app, ["review", str(deck)], input="")
    assert result.exit_code == 0
    assert f"no pending proposals for {deck}" in result.stdout
    assert not proposals_path(deck).exists()


@pytest.mark.usefixtures("lexical")
def test_interactive_review_with_piped_answers(runner: CliRunner, deck: Path) -> None:
    runner.invoke(app, ["expand", str(deck), "-n", "3", "--strategy", "cloze"])
    ids = [p.id for p in load_proposals(deck).proposals]
    result = runner.invoke(
        app, ["review", str(deck), "--reviewer", "ada"], input="a\nr\nnot useful\nx\ns\n"
    )
    assert result.exit_code == 0, result.stderr
    assert f"{ids[0]}: approved as card" in result.stdout
    assert f"{ids[1]}: rejected" in result.stdout
    assert "choose a, e, r, g, s or q" in result.stdout
    assert "review done: approved 1, rejected 1, skipped 1" in result.stdout
    store = load_proposals(deck)
    assert [p.status for p in store.proposals] == ["approved", "rejected", "pending"]
    assert store.proposals[1].reject_reason == "not useful"


@pytest.mark.usefixtures("lexical")
@pytest.mark.parametrize("editor", ["no-such-editor-here", "false"])
def test_a_failing_editor_is_one_line_and_the_review_goes_on(
    runner: CliRunner, deck: Path, monkeypatch: pytest.MonkeyPatch, editor: str
) -> None:
    expanded = runner.invoke(app, ["expand", str(deck), "-n", "2", "--strategy", "cloze"])
    assert expanded.exit_code == 0
    monkeypatch.setenv("EDITOR", editor)
    monkeypatch.delenv("VISUAL", raising=False)
    result = runner.invoke(app, ["review", str(deck), "--reviewer", "ada"], input="e\na\nq\n")
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert f"error: {editor}: Editing failed" in result.stdout
    assert "set $VISUAL or $EDITOR to an editor that exits 0 on save" in result.stdout
    assert "approved as card" in result.stdout  # the session went on after the failed edit


def test_an_editor_that_writes_latin1_is_one_line_and_the_review_goes_on(
    runner: CliRunner, deck: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    expanded = runner.invoke(app, ["expand", str(deck), "-n", "2", "--strategy", "cloze"])
    assert expanded.exit_code == 0
    editor = tmp_path / "latin1-editor.sh"
    editor.write_text("#!/bin/sh\nprintf 'question: caf\\351\\n' > \"$1\"\n", encoding="utf-8")
    editor.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(editor))
    monkeypatch.delenv("VISUAL", raising=False)
    result = runner.invoke(app, ["review", str(deck), "--reviewer", "ada"], input="e\na\nq\n")
    assert result.exit_code == 0, result.output
    assert "error: the edited text is not UTF-8; edit not saved" in result.stdout
    assert "approved as card" in result.stdout


def test_llm_strategy_without_endpoint_fails_at_once(
    runner: CliRunner, deck: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    result = runner.invoke(app, ["expand", str(deck), "--strategy", "llm"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: --strategy llm needs an endpoint: set OPENAI_API_KEY")
    assert not deck.with_name(deck.stem + ".proposals.yaml").exists()


def test_regenerate_without_endpoint_says_so(runner: CliRunner, deck: Path) -> None:
    runner.invoke(app, ["expand", str(deck), "-n", "1", "--strategy", "reverse"])
    result = runner.invoke(app, ["review", str(deck)], input="g\nq\n")
    assert result.exit_code == 0
    assert "error: regenerate needs an LLM endpoint" in result.stdout
    assert load_proposals(deck).proposals[0].status == "pending"
