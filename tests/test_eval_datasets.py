"""The hand-graded eval datasets in evals/: well-formed, big enough, in sync with the seed decks."""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from grader.deckfile import load_deck
from grader.models import Deck, EvalRecord

REPO_ROOT = Path(__file__).resolve().parent.parent
EVALS = REPO_ROOT / "evals"
SEED_RESPONSES = EVALS / "seed_responses.jsonl"
INJECTION = EVALS / "injection.jsonl"

KINDS = {
    "verbatim",
    "paraphrase",
    "terse",
    "partial",
    "wrong",
    "misconception",
    "typo",
    "padding",
    "empty",
    "off-topic",
    "injection",
}
SEED_DECKS = {"mlops-foundations", "mlops-pipeline"}


def _read_jsonl(path: Path) -> list[tuple[int, dict[str, object]]]:
    rows: list[tuple[int, dict[str, object]]] = []
    for number, text in enumerate(path.read_text(encoding="utf-8").split("\n"), start=1):
        if text.strip():
            data = json.loads(text)
            assert isinstance(data, dict), f"{path.name}:{number}: not a JSON object"
            rows.append((number, data))
    return rows


@cache
def _rows() -> list[tuple[int, dict[str, object]]]:
    return _read_jsonl(SEED_RESPONSES)


@cache
def _records() -> list[EvalRecord]:
    return [EvalRecord.model_validate(data) for _, data in _rows()]


@cache
def _deck(name: str) -> Deck:
    return load_deck(REPO_ROOT / "decks" / f"{name}.yaml").deck


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def test_every_line_parses_as_an_eval_record() -> None:
    for number, data in _rows():
        try:
            EvalRecord.model_validate(data)
        except Exception as exc:  # pragma: no cover - the message is the point
            pytest.fail(f"seed_responses.jsonl:{number}: {exc}")


def test_size_and_coverage() -> None:
    records = _records()
    assert len(records) >= 150
    cards = {(r.model_extra or {}).get("card_id") for r in records}
    assert len(cards) >= 40
    decks = Counter((r.model_extra or {}).get("deck") for r in records)
    assert set(decks) == SEED_DECKS
    assert min(decks.values()) >= 50


def test_ids_are_unique_and_present() -> None:
    ids = [r.id for r in _records()]
    assert all(ids)
    duplicates = [i for i, n in Counter(ids).items() if n > 1]
    assert duplicates == []


def test_every_kind_present_several_times_and_no_others() -> None:
    kinds = Counter(r.kind for r in _records())
    assert set(kinds) == KINDS
    assert min(kinds.values()) >= 3, kinds


def test_each_kind_spans_both_decks() -> None:
    decks_by_kind: dict[str, set[object]] = {}
    for r in _records():
        assert r.kind is not None
        decks_by_kind.setdefault(r.kind, set()).add((r.model_extra or {}).get("deck"))
    assert {k: v for k, v in decks_by_kind.items() if v != SEED_DECKS} == {}


def test_scores_are_integers_on_the_0_to_4_scale() -> None:
    for number, data in _rows():
        score = data["score"]
        assert isinstance(score, int) and not isinstance(score, bool), number
        assert 0 <= score <= 4, number
        assert data["score_max"] == 4, number


def test_every_line_has_a_one_line_justification() -> None:
    for number, data in _rows():
        why = data.get("justification")
        assert isinstance(why, str) and why.strip(), number
        assert "\n" not in why, number


def test_splits_are_dev_or_test_and_never_share_a_card() -> None:
    splits_by_card: dict[object, set[str | None]] = {}
    for r in _records():
        assert r.split in {"dev", "test"}
        splits_by_card.setdefault((r.model_extra or {}).get("card_id"), set()).add(r.split)
    assert all(len(s) == 1 for s in splits_by_card.values())
    assert {r.split for r in _records()} == {"dev", "test"}


def _assert_matches_deck(name: str, number: int, data: dict[str, object]) -> None:
    deck_name = data["deck"]
    assert deck_name in SEED_DECKS, f"{name}:{number}"
    card = _deck(str(deck_name)).card(str(data["card_id"]))
    assert card is not None, f"{name}:{number}: card {data['card_id']} not in {deck_name}"
    assert data["question"] == card.question, f"{name}:{number}"
    assert data["reference_answer"] == card.answer, f"{name}:{number}"
    if "footnote" in data or name == SEED_RESPONSES.name:
        assert data.get("footnote") == card.footnote, f"{name}:{number}"


def test_each_card_matches_its_committed_deck() -> None:
    for number, data in _rows():
        _assert_matches_deck(SEED_RESPONSES.name, number, data)


def test_anchor_kinds_carry_their_expected_grades() -> None:
    for r in _records():
        if r.kind == "verbatim":
            assert r.score == 4, r.id
            assert _words(r.student_answer) == _words(r.reference_answer), r.id
        if r.kind in {"empty", "off-topic"}:
            assert r.score == 0, r.id
        if r.kind == "empty":
            assert len(_words(r.student_answer)) <= 3, r.id


def test_grades_use_the_whole_scale() -> None:
    scores = Counter(int(r.score) for r in _records())
    assert set(scores) == {0, 1, 2, 3, 4}
    assert min(scores.values()) >= 10, scores


@pytest.mark.skipif(not INJECTION.exists(), reason="evals/injection.jsonl not present")
def test_injection_suite_parses_and_does_not_duplicate_seed_responses() -> None:
    rows = _read_jsonl(INJECTION)
    injection = [EvalRecord.model_validate(data) for _, data in rows]
    assert injection
    assert {r.kind for r in injection} <= KINDS
    for number, data in rows:
        if "card_id" in data:
            _assert_matches_deck(INJECTION.name, number, data)
    seed = _records()
    assert {r.id for r in injection if r.id} & {r.id for r in seed} == set()
    pairs = {(r.question, r.student_answer) for r in seed}
    assert [r.id for r in injection if (r.question, r.student_answer) in pairs] == []


def test_the_eval_loader_reads_every_line_strictly() -> None:
    dataset = pytest.importorskip("grader.evaluation.dataset")
    loaded = dataset.load_datasets([SEED_RESPONSES], strict=True)
    assert loaded.problems == []
    assert len(loaded.items) == len(_rows())


def test_the_reviewer_set_loads_and_matches_the_decks() -> None:
    """Not hand-graded, but its cards must still be the decks' (see evals/README.md)."""
    reviewer = SEED_RESPONSES.parent / "reviewer_responses.jsonl"
    dataset = pytest.importorskip("grader.evaluation.dataset")
    loaded = dataset.load_datasets([reviewer], strict=True)
    assert loaded.problems == [] and len(loaded.items) == 234
    for number, line in enumerate(reviewer.read_text(encoding="utf-8").splitlines(), start=1):
        _assert_matches_deck(reviewer.name, number, json.loads(line))


def test_a_dataset_without_decks_grades_each_response_on_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two references to one question are no deck: the offline grader must not cap a correct
    answer as 'meant for another card' because the other reference is closer."""
    import json

    from typer.testing import CliRunner

    from grader.cli import app

    monkeypatch.setenv("GRADER_HOME", str(tmp_path / "home"))
    q = "Explain why you got a voltage reading of 1.5 for terminal 1 and the positive terminal."
    rows = [
        {
            "id": "a",
            "question": q,
            "reference_answer": "Terminal 1 and the positive terminal are separated by the gap",
            "student_answer": "Terminal 1 is not connected to the positive terminal.",
            "score": 1,
            "score_max": 1,
        },
        {
            "id": "b",
            "question": q,
            "reference_answer": "Terminal 1 is not connected to the positive terminal",
            "student_answer": "the gap",
            "score": 1,
            "score_max": 1,
        },
    ]
    data = tmp_path / "two.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "p.jsonl"
    result = CliRunner().invoke(
        app, ["eval", str(data), "--grader", "offline", "--no-report", "--out", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert first["verdict"] == "correct"
    assert not any("another card" in m for m in first["grade"]["misconceptions"])
