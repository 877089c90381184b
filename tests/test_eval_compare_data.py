"""`grader eval compare` pairs `<dataset>:<line>` keys only when the dataset is the same file."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from eval_fakes import FakeGrader, record, standard_rows, write_dataset
from typer.testing import CliRunner

from grader.cli import app


@pytest.fixture(autouse=True)
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeGrader:
    grader = FakeGrader()
    monkeypatch.setattr("grader.graders.factory.make_grader", lambda *a, **k: grader)
    return grader


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["eval", *args])


def run(data: Path, run_dir: Path, *extra: str) -> Path:
    result = invoke(str(data), "--run-dir", str(run_dir), "--bootstrap", "0", "--no-report", *extra)
    assert result.exit_code == 0, result.stderr
    return run_dir


def compare(a: Path, b: Path) -> Any:
    return invoke("compare", str(a), str(b), "--json", "--bootstrap", "0")


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def other_rows(n: int = 14) -> list[dict[str, Any] | str]:
    """As many responses as `standard_rows()`, about something else entirely."""
    return [record(100 + i, f"unrelated {i}", 4 - i % 5) for i in range(n)]


def same_name_runs(tmp_path: Path) -> tuple[Path, Path, Path, Path]:
    """Two files called injection.jsonl with different responses, and a run of each: the two
    files, run A (of the first) and run B (of the second)."""
    (tmp_path / "v1").mkdir()
    (tmp_path / "v2").mkdir()
    first = write_dataset(tmp_path / "v1" / "injection.jsonl", standard_rows())
    second = write_dataset(tmp_path / "v2" / "injection.jsonl", other_rows())
    return first, second, run(first, tmp_path / "a"), run(second, tmp_path / "b")


def test_same_name_different_content_is_refused_in_one_line(tmp_path: Path) -> None:
    first, second, a, b = same_name_runs(tmp_path)

    expected = (
        "error: cannot compare: injection.jsonl differs between the runs "
        f"(sha256 {sha(first)[:8]} in A, {sha(second)[:8]} in B)\n"
    )
    for result in (compare(a, b), invoke("compare", str(a), str(b))):
        assert result.exit_code == 1
        assert result.stderr == expected
        assert result.stdout == ""
        assert "Traceback" not in result.output
    # the other way round names the hashes the other way round
    swapped = compare(b, a)
    assert swapped.exit_code == 1
    assert f"(sha256 {sha(second)[:8]} in A, {sha(first)[:8]} in B)" in swapped.stderr


def test_refusal_names_the_dataset_when_stems_were_made_unique(tmp_path: Path) -> None:
    # two files called d.jsonl in one run are named d#1 and d#2; only d#2 differs
    for folder in ("x", "y", "z"):
        (tmp_path / folder).mkdir()
    shared = write_dataset(tmp_path / "x" / "d.jsonl", standard_rows())
    old = write_dataset(tmp_path / "y" / "d.jsonl", standard_rows(6))
    new = write_dataset(tmp_path / "z" / "d.jsonl", other_rows(8))
    a = tmp_path / "a"
    b = tmp_path / "b"
    assert invoke(str(shared), str(old), "--run-dir", str(a), "--no-report").exit_code == 0
    assert invoke(str(shared), str(new), "--run-dir", str(b), "--no-report").exit_code == 0

    result = compare(a, b)
    assert result.exit_code == 1
    assert result.stderr == (
        "error: cannot compare: dataset d#2 (d.jsonl in A, d.jsonl in B) differs between the "
        f"runs (sha256 {sha(old)[:8]} in A, {sha(new)[:8]} in B)\n"
    )


def test_same_file_still_compares_with_a_limited_run_of_it(tmp_path: Path) -> None:
    data = write_dataset(tmp_path / "d.jsonl", standard_rows())
    full = run(data, tmp_path / "full")
    limited = run(data, tmp_path / "limited", "--limit", "5")
    # the same bytes under another directory are the same dataset
    (tmp_path / "copy").mkdir()
    copy = shutil.copy(data, tmp_path / "copy" / "d.jsonl")
    copied = run(Path(copy), tmp_path / "copied")

    result = compare(full, limited)
    assert result.exit_code == 0, result.stderr
    out = json.loads(result.stdout)["data"]
    assert (out["common"], out["only_a"], out["only_b"]) == (5, 9, 0)
    assert all(d["delta"] in (0.0, None) for d in out["deltas"])

    same = compare(full, copied)
    assert same.exit_code == 0, same.stderr
    assert json.loads(same.stdout)["data"]["common"] == 14


def test_runs_sharing_no_dataset_keep_their_message(tmp_path: Path) -> None:
    one = write_dataset(tmp_path / "one.jsonl", standard_rows())
    two = write_dataset(tmp_path / "two.jsonl", other_rows())
    result = compare(run(one, tmp_path / "a"), run(two, tmp_path / "b"))
    assert result.exit_code == 1
    assert result.stderr == "error: the two runs have no responses in common\n"


def test_without_a_hash_the_paired_responses_themselves_must_agree(tmp_path: Path) -> None:
    first, _, a, b = same_name_runs(tmp_path)
    same = run(first, tmp_path / "same")
    for run_dir in (a, same):  # a spec edited by hand, or written elsewhere, without the hash
        spec_path = run_dir / "spec.json"
        spec = json.loads(spec_path.read_text())
        for dataset in spec["datasets"]:
            dataset["sha256"] = ""
        spec_path.write_text(json.dumps(spec))

    result = compare(a, b)
    assert result.exit_code == 1
    assert result.stderr == (
        "error: cannot compare: dataset injection is not the same file in both runs (no hash "
        "in a run spec, and line 1 is response 'r0' graded 1 by a person in A, 'r100' graded 1 "
        "in B)\n"
    )
    agreeing = compare(same, run(first, tmp_path / "again"))
    assert agreeing.exit_code == 0, agreeing.stderr
    assert json.loads(agreeing.stdout)["data"]["common"] == 14
