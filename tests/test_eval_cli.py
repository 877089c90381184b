"""`grader eval` end to end with a fake grader: outputs, metrics, slices, limits, thresholds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from eval_fakes import FakeGrader, SyncFakeGrader, record, standard_rows, write_dataset
from typer.testing import CliRunner

from grader.cli import app
from grader.exitcodes import ExitCode

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeGrader:
    grader = FakeGrader(delay=0.01)
    monkeypatch.setattr("grader.graders.factory.make_grader", lambda *a, **k: grader)
    return grader


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, ["eval", *args])


def test_eval_json_summary_and_outputs(tmp_path: Path, fake: FakeGrader) -> None:
    rows = standard_rows()
    rows.insert(3, "{broken")
    data = write_dataset(tmp_path / "d.jsonl", rows)
    out = tmp_path / "pred.jsonl"
    run_dir = tmp_path / "run"
    result = invoke(
        str(data), "--json", "--out", str(out), "--run-dir", str(run_dir), "--bootstrap", "50"
    )
    assert result.exit_code == 0, result.stderr
    assert f"skipped {data}:4: not valid JSON" in result.stderr
    envelope = json.loads(result.stdout)
    assert envelope["version"] == 1 and envelope["command"] == "eval"
    summary = envelope["data"]["summary"]
    overall = summary["overall"]
    assert (overall["n"], overall["graded"], overall["ungraded"]) == (14, 13, 1)
    # 12 answers graded exactly right plus one wrong answer graded 1.0: MAE = 1/13
    assert overall["mae"]["value"] == pytest.approx(1 / 13)
    # 5 gold-incorrect answers (4 'nope' + 'right but wrong'): one accepted
    assert overall["false_accept_rate"]["value"] == pytest.approx(1 / 5)
    assert overall["classes"] == ["correct", "partial", "incorrect"]
    assert overall["confusion"]["counts"] == [[4, 0, 0], [0, 4, 0], [1, 0, 4]]
    low, high = overall["mae"]["low"], overall["mae"]["high"]
    assert low <= overall["mae"]["value"] <= high
    assert set(summary["by_split"]) == {"a", "b"}
    assert set(summary["by_kind"]) == {"verbatim", "partial", "wrong"}
    assert summary["by_kind"]["verbatim"]["ungraded"] == 1
    assert summary["by_kind"]["partial"]["mae"]["value"] == pytest.approx(0.0)
    spec = envelope["data"]["spec"]
    assert spec["grader"] == "fake" and spec["model"] == "fake-1"
    assert spec["datasets"][0]["records"] == 14 and spec["datasets"][0]["skipped"] == 1
    assert "pydantic" in spec["package_versions"]
    assert re.fullmatch(r"[0-9a-f]{16}", spec["code_hash"])

    predictions = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(predictions) == 14
    assert predictions[0]["id"] == "r0" and predictions[0]["predicted_score"] == 1.0
    failed = next(p for p in predictions if p["verdict"] == "ungraded")
    assert failed["predicted_score"] is None and failed["grade"]["reason"] == "fake failure"

    report = (run_dir / "report.md").read_text()
    # the one response graded far from its human grade; agreeing ones are not listed
    assert "## Largest disagreements (top 1 of 1)" in report and "right but wrong" in report
    assert "## Per kind" in report and "## Ungraded (1)" in report
    # a slice of 5 responses gets no interval: a bootstrap of a handful says little
    wrong = summary["by_kind"]["wrong"]
    assert wrong["mae"]["low"] is None and wrong["false_accept_rate"]["n"] == 5
    row = next(line for line in report.splitlines() if line.startswith("| wrong |"))
    assert "[" not in row
    for chart in ("confusion.png", "calibration.png", "per_kind.png"):
        assert (run_dir / chart).read_bytes().startswith(b"\x89PNG")
    assert len((run_dir / "results.jsonl").read_text().splitlines()) == 14


def test_concurrency_limit_is_honoured(tmp_path: Path, fake: FakeGrader) -> None:
    data = write_dataset(tmp_path / "d.jsonl", standard_rows(40))
    result = invoke(str(data), "--max-connections", "4", "--bootstrap", "0", "--no-report")
    assert result.exit_code == 0, result.stderr
    assert fake.max_in_flight == 4
    assert len(fake.calls) == 42


def test_grader_without_agrade_uses_grade_many(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    grader = SyncFakeGrader()
    monkeypatch.setattr("grader.graders.factory.make_grader", lambda *a, **k: grader)
    data = write_dataset(tmp_path / "d.jsonl", standard_rows(70))
    result = invoke(str(data), "--json", "--bootstrap", "0", "--no-report")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["data"]["summary"]["overall"]["n"] == 72
    assert len(grader.calls) == 72


def test_human_output(tmp_path: Path, fake: FakeGrader) -> None:
    data = write_dataset(tmp_path / "d.jsonl", standard_rows())
    result = invoke(str(data), "--bootstrap", "20", "--no-report")
    assert result.exit_code == 0, result.stderr
    assert "14 responses, 13 graded, 1 ungraded (fake, fake-1)" in result.stdout
    assert "false_accept_rate" in result.stdout and "per kind" in result.stdout
    assert result.stderr == "ungraded (1): fake failure\n"


def test_a_run_where_nothing_could_be_graded_fails(tmp_path: Path, fake: FakeGrader) -> None:
    rows: list[dict[str, Any] | str] = [record(i, f"FAIL {i}", 4) for i in range(3)]
    data = write_dataset(tmp_path / "d.jsonl", rows)
    result = invoke(str(data), "--bootstrap", "0", "--no-report", "--run-dir", str(tmp_path / "r"))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "ungraded (3): fake failure"
    assert lines[-1] == (
        "error: none of the 3 responses could be graded (reasons above); fix the cause and "
        "continue with: grader eval --resume r"
    )
    assert (tmp_path / "r" / "results.jsonl").is_file()  # kept for the resume


def test_a_file_of_bad_lines_says_what_is_wrong_with_each(tmp_path: Path, fake: FakeGrader) -> None:
    data = write_dataset(tmp_path / "d.jsonl", ["{", "[1]"])
    result = invoke(str(data))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"skipped {data}:1: not valid JSON (Expecting property name enclosed in double quotes "
        "at column 2)",
        f"skipped {data}:2: expected a JSON object, got list",
        f"error: no valid responses to grade in {data}",
    ]


def test_an_unwritable_out_path_fails_before_grading(tmp_path: Path, fake: FakeGrader) -> None:
    data = write_dataset(tmp_path / "d.jsonl", standard_rows())
    result = invoke(str(data), "--out", str(tmp_path), "--no-report")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {tmp_path}: is a directory; give a file name"
    assert fake.calls == []
    (tmp_path / "file").write_text("", encoding="utf-8")
    result = invoke(str(data), "--report-dir", str(tmp_path / "file"))
    assert result.exit_code == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'file'}: is not a directory"
    assert fake.calls == []


def test_slice_tables_fit_80_columns_without_cutting_numbers(
    tmp_path: Path, fake: FakeGrader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # what a CI log or a pipe gets
    rows = standard_rows()
    for row in rows:
        if isinstance(row, dict):
            row["kind"] = f"{row['kind']}-misconception"  # long slice names
    data = write_dataset(tmp_path / "d.jsonl", rows)
    result = invoke(str(data), "--bootstrap", "0", "--no-report")
    assert result.exit_code == 0, result.stderr
    assert "…" not in result.stdout
    assert "per kind: scores" in result.stdout and "per kind: verdicts" in result.stdout
    verdicts = result.stdout.split("per kind: verdicts")[1]
    row = next(line for line in verdicts.splitlines() if line.startswith("wrong-misconception"))
    # 4 wrong answers graded incorrect, 1 accepted: F1 of "incorrect" 0.889, of "correct" 0
    assert row.split()[1:] == ["5", "0", "0.800", "0.444", "0.889", "0.200"]


def test_slice_table_is_one_table_when_the_terminal_is_wide(
    tmp_path: Path, fake: FakeGrader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    data = write_dataset(tmp_path / "d.jsonl", standard_rows())
    result = invoke(str(data), "--bootstrap", "0", "--no-report")
    assert result.exit_code == 0, result.stderr
    assert "per kind\n" in result.stdout and "per kind: scores" not in result.stdout
    header = next(line for line in result.stdout.splitlines() if line.startswith("slice"))
    assert header.split()[-2:] == ["weighted_f1", "false_accept_rate"]


@pytest.mark.parametrize(
    ("thresholds", "code", "message"),
    [
        (["accuracy=0.99"], ExitCode.BELOW_THRESHOLD, "threshold not met: accuracy 0.923 < 0.99"),
        (
            ["mae=0.01"],
            ExitCode.BELOW_THRESHOLD,
            "threshold not met: mae 0.077 > 0.01 (at most 0.01 allowed)",
        ),
        # the metrics hold, but one response of 14 is ungraded: a gate needs them all graded...
        (
            ["accuracy=0.9"],
            ExitCode.BELOW_THRESHOLD,
            "threshold not met: 1 of 14 responses ungraded (graded 0.929 < 1.0): the metrics "
            "cover only part of the data",
        ),
        # ...unless it says what share will do
        (["accuracy=0.9", "graded=0.9"], ExitCode.OK, None),
        (["qwk=nan"], ExitCode.USAGE, "error: --fail-under 'qwk=nan': the value must be a finite"),
        (["graded=1.5"], ExitCode.USAGE, "graded is a share, from 0 to 1"),
    ],
)
def test_fail_under(
    tmp_path: Path, fake: FakeGrader, thresholds: list[str], code: int, message: str | None
) -> None:
    data = write_dataset(tmp_path / "d.jsonl", standard_rows())
    gates = [arg for threshold in thresholds for arg in ("--fail-under", threshold)]
    result = invoke(str(data), *gates, "--bootstrap", "0", "--no-report")
    assert result.exit_code == code, result.stderr
    if message:
        assert message in result.stderr


def test_bad_invocations(tmp_path: Path, fake: FakeGrader) -> None:
    data = write_dataset(tmp_path / "d.jsonl", standard_rows())
    bad = invoke(str(data), "--fail-under", "nope=1")
    assert bad.exit_code == 2 and bad.stderr.startswith("error: --fail-under 'nope=1'")
    missing = invoke(str(tmp_path / "none.jsonl"))
    assert missing.exit_code == 1
    assert missing.stderr == f"error: {tmp_path / 'none.jsonl'}: no such file\n"
    strict = write_dataset(tmp_path / "s.jsonl", [*standard_rows(3), "{"])
    failed = invoke(str(strict), "--strict")
    assert failed.exit_code == 1 and f"{strict}:6:" in failed.stderr
    assert invoke().exit_code in (0, 2)


def test_repeat_resume_of_complete_run_grades_nothing(tmp_path: Path, fake: FakeGrader) -> None:
    data = write_dataset(tmp_path / "d.jsonl", standard_rows())
    first = invoke(str(data), "--json", "--bootstrap", "0", "--no-report")
    run_id = json.loads(first.stdout)["data"]["run_id"]
    calls = len(fake.calls)
    again = invoke("--resume", run_id, "--json", "--bootstrap", "0", "--no-report")
    assert again.exit_code == 0, again.stderr
    # only the ungraded response is retried
    assert len(fake.calls) == calls + 1
    assert json.loads(again.stdout)["data"]["graded_now"] == 1


def test_runs_started_in_the_same_second_with_the_same_suffix_get_their_own_directories(
    tmp_path: Path, fake: FakeGrader, monkeypatch: pytest.MonkeyPatch
) -> None:
    from grader.evaluation import runner

    drawn = iter(["20261203-120000-abcd", "20261203-120000-abcd", "20261203-120000-beef"])
    monkeypatch.setattr(runner, "new_run_id", lambda: next(drawn))
    data = write_dataset(tmp_path / "d.jsonl", standard_rows())
    args = (str(data), "--json", "--bootstrap", "0", "--no-report")
    first, second = invoke(*args), invoke(*args)
    assert first.exit_code == 0, first.stderr
    assert second.exit_code == 0, second.stderr
    run_ids = [json.loads(r.stdout)["data"]["run_id"] for r in (first, second)]
    assert run_ids == ["20261203-120000-abcd", "20261203-120000-beef"]
    home = Path(os.environ["GRADER_HOME"])
    for run_id in run_ids:
        assert runner.read_spec(runner.resolve_run(home, run_id)).run_id == run_id


def test_resume_refuses_changed_dataset(tmp_path: Path, fake: FakeGrader) -> None:
    data = write_dataset(tmp_path / "d.jsonl", standard_rows())
    first = invoke(str(data), "--json", "--bootstrap", "0", "--no-report")
    run_id = json.loads(first.stdout)["data"]["run_id"]
    write_dataset(data, standard_rows(6))
    again = invoke("--resume", run_id)
    assert again.exit_code == 1 and "dataset changed since the run started" in again.stderr


def test_compare_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = write_dataset(tmp_path / "d.jsonl", standard_rows())
    monkeypatch.setattr("grader.graders.factory.make_grader", lambda *a, **k: FakeGrader())
    invoke(str(data), "--run-dir", str(tmp_path / "a"), "--bootstrap", "0", "--no-report")

    class Harsher(FakeGrader):
        def _grade(self, answer: str) -> Any:
            return super()._grade(answer.replace("half", "nope"))

    monkeypatch.setattr("grader.graders.factory.make_grader", lambda *a, **k: Harsher())
    invoke(str(data), "--run-dir", str(tmp_path / "b"), "--bootstrap", "0", "--no-report")
    result = invoke(
        "compare", str(tmp_path / "a"), str(tmp_path / "b"), "--json", "--bootstrap", "50"
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["command"] == "eval compare"  # spaces, as "deck list"
    data_out = json.loads(result.stdout)["data"]
    assert data_out["common"] == 14
    deltas = {d["metric"]: d for d in data_out["deltas"]}
    # the 4 'half' answers (gold 0.5) drop to 0: MAE over 13 graded rises by 4 * 0.5 / 13
    assert deltas["mae"]["delta"] == pytest.approx(2 / 13)
    assert deltas["mae"]["low"] <= deltas["mae"]["delta"] <= deltas["mae"]["high"]
    # the false-accept rate rests on the 5 human-incorrect answers: too few for an interval
    assert deltas["false_accept_rate"]["delta"] is not None
    assert deltas["false_accept_rate"]["low"] is None
    assert len(data_out["changed"]) == 4
    assert {c["verdict_a"] for c in data_out["changed"]} == {"partial"}
    human = invoke("compare", str(tmp_path / "a"), str(tmp_path / "b"), "--bootstrap", "0")
    assert "4 responses changed verdict" in human.stdout


def test_code_hash_follows_the_package_files(tmp_path: Path) -> None:
    from grader.evaluation.runner import code_hash

    package = tmp_path / "grader"
    (package / "__pycache__").mkdir(parents=True)
    (package / "a.py").write_text("x = 1\n", encoding="utf-8")
    before = code_hash(package)
    (package / "__pycache__" / "a.cpython-311.pyc").write_bytes(b"compiled")
    assert code_hash(package) == before
    (package / "a.py").write_text("x = 2\n", encoding="utf-8")
    assert code_hash(package) != before


def test_a_directory_with_foreign_results_is_not_adopted(tmp_path: Path, fake: FakeGrader) -> None:
    data = write_dataset(tmp_path / "d.jsonl", standard_rows())
    run = tmp_path / "run"
    run.mkdir()
    (run / "results.jsonl").write_text('{"x": 1}\n')
    result = invoke(str(data), "--run-dir", str(run))
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {run}: holds a results.jsonl but no run spec; give a new or empty directory\n"
    )
    assert (run / "results.jsonl").read_text() == '{"x": 1}\n' and fake.calls == []


def test_slices_of_ten_or_more_carry_their_intervals(tmp_path: Path, fake: FakeGrader) -> None:
    data = write_dataset(tmp_path / "d.jsonl", standard_rows(30))
    run_dir = tmp_path / "run"
    result = invoke(str(data), "--json", "--run-dir", str(run_dir), "--bootstrap", "50")
    assert result.exit_code == 0, result.stderr
    verbatim = json.loads(result.stdout)["data"]["summary"]["by_kind"]["verbatim"]["mae"]
    assert verbatim["n"] == 10 and verbatim["low"] is not None
    report = (run_dir / "report.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| verbatim |"))
    expected = f"{verbatim['value']:.3f} [{verbatim['low']:.2f}, {verbatim['high']:.2f}]"
    assert f"| {expected} |" in row


def test_the_terminal_slice_tables_carry_the_intervals_too(
    tmp_path: Path, fake: FakeGrader, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    data = write_dataset(tmp_path / "d.jsonl", standard_rows(30))
    run_dir = tmp_path / "run"
    result = invoke(str(data), "--run-dir", str(run_dir), "--bootstrap", "50", "--no-report")
    assert result.exit_code == 0, result.stderr
    summary = json.loads((run_dir / "summary.json").read_text())["by_kind"]
    lines = result.stdout.split("per kind")[1].splitlines()
    verbatim = next(i for i, line in enumerate(lines) if line.startswith("verbatim"))
    mae = summary["verbatim"]["mae"]
    assert mae["low"] is not None
    assert f"[{mae['low']:.2f}, {mae['high']:.2f}]" in lines[verbatim + 1]
    # a blank line after each slice, so a slice name wrapped onto the CI line reads as one row
    assert all(
        lines[i + 2].strip() == "" for i, line in enumerate(lines) if line.startswith("verbatim")
    )
    assert "under each value: its 95% CI" in result.stdout


def test_the_json_lists_every_gate_checked(tmp_path: Path, fake: FakeGrader) -> None:
    data = write_dataset(tmp_path / "d.jsonl", standard_rows())
    result = invoke(str(data), "--json", "--fail-under", "mae=1", "--bootstrap", "0")
    assert result.exit_code == ExitCode.BELOW_THRESHOLD
    thresholds = json.loads(result.stdout)["data"]["thresholds"]
    assert thresholds["checked"] == ["mae=1.0", "graded=1.0"]
    assert [f.split(" (")[0] for f in thresholds["failed"]] == ["1 of 14 responses ungraded"]


@pytest.mark.parametrize("out", ["-", "/dev/stdout"])
def test_predictions_on_stdout_send_the_summary_to_stderr(tmp_path: Path, out: str) -> None:
    """A real `grader eval` process (the offline grader): stdout carries nothing but the
    predictions, one JSON object per line."""
    data = REPO / "evals" / "injection.jsonl"
    argv = [sys.executable, "-m", "grader", "eval", str(data), "--grader", "offline"]
    env = {**os.environ, "GRADER_HOME": str(tmp_path)}
    done = subprocess.run(
        [*argv, "--limit", "5", "--no-report", "--bootstrap", "0", "--out", out],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert [json.loads(line)["line"] for line in lines] == [1, 2, 3, 4, 5]
    assert "5 responses, 5 graded" in done.stderr and "per kind" in done.stderr

    both = subprocess.run(
        [*argv, "--limit", "1", "--out", out, "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert both.returncode == ExitCode.USAGE
    assert both.stderr == (
        "error: --out writes the predictions to stdout, where --json goes: choose one\n"
    )
