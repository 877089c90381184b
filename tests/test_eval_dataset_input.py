"""Eval dataset input edge cases: bytes that are not UTF-8, a byte-order mark, the id's type."""

from __future__ import annotations

import codecs
import json
from pathlib import Path
from typing import Any

import pytest
from eval_fakes import FakeGrader, record, standard_rows
from typer.testing import CliRunner

from grader.cli import app
from grader.errors import InputError
from grader.evaluation.dataset import load_datasets


def _line(row: dict[str, Any]) -> bytes:
    return json.dumps(row).encode("utf-8") + b"\n"


def _bad_bytes_file(path: Path) -> Path:
    """Line 2 is Latin-1 (`caf\\xe9`), lines 1 and 3 are valid records."""
    latin = _line(record(2, "caf\u00e9", 1)).replace(b"caf\\u00e9", b"caf\xe9")
    assert b"\xe9" in latin
    path.write_bytes(_line(record(1, "a", 1)) + latin + _line(record(3, "b", 2)))
    return path


def test_a_line_that_is_not_utf8_is_reported_and_skipped(tmp_path: Path) -> None:
    path = _bad_bytes_file(tmp_path / "badbytes.jsonl")
    loaded = load_datasets([path])
    assert [(i.line, i.record.id) for i in loaded.items] == [(1, "r1"), (3, "r3")]
    assert loaded.problems == [f"{path}:2: not UTF-8 text"]
    assert (loaded.files[0].records, loaded.files[0].skipped) == (2, 1)


def test_a_line_that_is_not_utf8_fails_a_strict_load(tmp_path: Path) -> None:
    path = _bad_bytes_file(tmp_path / "badbytes.jsonl")
    with pytest.raises(InputError) as caught:
        load_datasets([path], strict=True)
    assert str(caught.value) == f"{path}:2: not UTF-8 text"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeGrader:
    grader = FakeGrader()
    monkeypatch.setattr("grader.graders.factory.make_grader", lambda *a, **k: grader)
    return grader


def test_eval_skips_a_line_that_is_not_utf8_and_strict_fails_on_it(
    tmp_path: Path, fake: FakeGrader
) -> None:
    rows = b"".join(_line(r) for r in standard_rows(3) if isinstance(r, dict))
    path = tmp_path / "badbytes.jsonl"
    path.write_bytes(rows + b'{"question": "\xff"}\n')
    runner = CliRunner()
    result = runner.invoke(app, ["eval", str(path), "--json", "--bootstrap", "0", "--no-report"])
    assert result.exit_code == 0, result.stderr
    assert f"skipped {path}:6: not UTF-8 text" in result.stderr.splitlines()
    assert json.loads(result.stdout)["data"]["summary"]["overall"]["n"] == 5
    strict = runner.invoke(app, ["eval", str(path), "--strict", "--no-report"])
    assert strict.exit_code == 1
    assert strict.stderr == f"error: {path}:6: not UTF-8 text\n"


def test_a_leading_byte_order_mark_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(codecs.BOM_UTF8 + _line(record(1, "a", 1)) + _line(record(2, "b", 2)))
    loaded = load_datasets([path], strict=True)
    assert [(i.line, i.record.id) for i in loaded.items] == [(1, "r1"), (2, "r2")]
    assert loaded.items[0].record.question == "Question 1?"
    assert loaded.problems == []


@pytest.mark.parametrize("bad_id", [["a"], {"a": 1}, 1.5, True])
def test_an_id_that_is_not_a_string_or_an_integer_is_a_bad_line(
    tmp_path: Path, bad_id: object
) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(_line(record(1, "a", 1)) + _line({**record(2, "b", 1), "id": bad_id}))
    loaded = load_datasets([path])
    assert [i.line for i in loaded.items] == [1]
    assert loaded.problems == [f"{path}:2: field 'id': must be a string or an integer"]
    with pytest.raises(InputError, match=r"d\.jsonl:2: field 'id': must be a string or an"):
        load_datasets([path], strict=True)


def _mixed_ids(path: Path, last_id: object) -> Path:
    """Ids "r1", 42, none, then `last_id`."""
    no_id = record(3, "c", 1)
    del no_id["id"]
    rows = [record(1, "a", 1), {**record(2, "b", 1), "id": 42}, no_id]
    rows.append({**record(4, "d", 1), "id": last_id})
    path.write_bytes(b"".join(_line(r) for r in rows))
    return path


def test_string_integer_and_absent_ids_are_accepted(tmp_path: Path) -> None:
    path = _mixed_ids(tmp_path / "d.jsonl", None)
    loaded = load_datasets([path], strict=True)
    assert [i.record.id for i in loaded.items] == ["r1", 42, None, None]
    assert [i.display_id for i in loaded.items] == ["r1", 42, 3, 4]


def test_predictions_and_a_resumed_run_keep_each_id_as_given(
    tmp_path: Path, fake: FakeGrader
) -> None:
    """A learner's data joins back on `id`: an integer 42 must not come back as "42"."""
    path = _mixed_ids(tmp_path / "d.jsonl", "7")
    run, out = tmp_path / "run", tmp_path / "p.jsonl"
    args = ["eval", str(path), "--run-dir", str(run), "--out", str(out), "--bootstrap", "0"]
    first = CliRunner().invoke(app, [*args, "--no-report"])
    assert first.exit_code == 0, first.stderr
    ids = ["r1", 42, 3, "7"]
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ids
    out.unlink()
    again = CliRunner().invoke(app, ["eval", "--resume", str(run), "--out", str(out)])
    assert again.exit_code == 0, again.stderr
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ids
