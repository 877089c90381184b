"""Eval dataset loading: required fields, extras kept, bad lines as file:line, --strict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eval_fakes import record, write_dataset

from grader.errors import InputError
from grader.evaluation.dataset import card_for, load_datasets


def test_loads_records_keeps_extras_and_numbers_lines(tmp_path: Path) -> None:
    row = record(1, "an answer", 3, split="dev", kind="paraphrase")
    row["annotator"] = "ada"
    path = write_dataset(tmp_path / "d.jsonl", [row, "", record(2, "", 0)])
    loaded = load_datasets([path])
    assert [i.line for i in loaded.items] == [1, 3]
    first = loaded.items[0]
    assert first.key == "d:1"
    assert first.record.model_extra == {"annotator": "ada"}
    assert first.record.gold == pytest.approx(0.75)
    assert first.display_id == "r1"
    assert loaded.items[1].record.student_answer == ""
    assert loaded.files[0].records == 2 and len(loaded.files[0].sha256) == 64


SKEW = "a wrong score_max would skew every metric"


def test_bad_lines_reported_and_skipped(tmp_path: Path) -> None:
    missing = record(2, "x", 1)
    del missing["score_max"]
    bad_score = record(3, "x", 1)
    bad_score["score_max"] = 0
    rows: list[dict[str, Any] | str] = [
        record(1, "x", 1),
        "{not json",
        missing,
        "[1, 2]",
        bad_score,
        record(6, "y", 4),
        record(7, "z", 5),  # score_max 4
        record(8, "z", -1),
        record(9, "z", True),
        record(10, "z", "3"),  # type: ignore[arg-type]
        {**record(11, "z", 1), "score_max": float("inf")},
    ]
    path = write_dataset(tmp_path / "d.jsonl", rows)
    loaded = load_datasets([path])
    assert [i.line for i in loaded.items] == [1, 6]
    assert loaded.problems == [
        f"{path}:2: not valid JSON (Expecting property name enclosed in double quotes at column 2)",
        f"{path}:3: missing required field 'score_max'",
        f"{path}:4: expected a JSON object, got list",
        f"{path}:5: field 'score_max': Input should be greater than 0",
        f"{path}:7: score 5 is outside 0..score_max (4); {SKEW}",
        f"{path}:8: score -1 is outside 0..score_max (4); {SKEW}",
        f"{path}:9: field 'score': Input should be a valid number",
        f"{path}:10: field 'score': Input should be a valid number",
        f"{path}:11: field 'score_max': Input should be a finite number",
    ]
    assert loaded.files[0].skipped == 9


def test_strict_fails_on_first_bad_line(tmp_path: Path) -> None:
    empty_question = record(2, "x", 1)
    empty_question["question"] = "  "
    path = write_dataset(tmp_path / "d.jsonl", [record(1, "x", 1), empty_question])
    with pytest.raises(InputError, match=r"d\.jsonl:2: field 'question' is empty"):
        load_datasets([path], strict=True)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        load_datasets([tmp_path / "missing.jsonl"])
    with pytest.raises(InputError, match="is a directory"):
        load_datasets([tmp_path])
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"q": "caf\xe9"}\n')  # skipped unless strict: see test_eval_dataset_input
    with pytest.raises(InputError, match=r"latin\.jsonl:1: not UTF-8"):
        load_datasets([latin], strict=True)


def test_limit_and_duplicate_names(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    a = write_dataset(tmp_path / "d.jsonl", [record(i, "a", 1) for i in range(3)])
    b = write_dataset(tmp_path / "x" / "d.jsonl", [record(i, "b", 1) for i in range(3)])
    loaded = load_datasets([a, b], limit=4)
    assert [i.key for i in loaded.items] == ["d#1:1", "d#1:2", "d#1:3", "d#2:1"]


def test_card_for_is_stable_and_uses_rubric() -> None:
    from grader.models import EvalRecord

    rec = EvalRecord.model_validate(record(1, "a", 1) | {"rubric": ["point one"]})
    card = card_for(rec)
    assert card.id == card_for(rec).id
    assert card.rubric == ["point one"] and card.rubric_source == "author"
    assert card.answer == rec.reference_answer
