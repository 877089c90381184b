"""A run killed with SIGKILL mid-way resumes with `--resume` and grades only what is missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from eval_fakes import FakeGrader, SyncFakeGrader, standard_rows, write_dataset
from typer.testing import CliRunner

from grader.cli import app

TESTS = Path(__file__).resolve().parent

SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from eval_fakes import FakeGrader
import grader.graders.factory as factory
factory.make_grader = lambda *a, **k: FakeGrader(delay=0.05)
from grader.cli import app
app(["eval", {data!r}, "--run-dir", {run!r}, "-c", "2", "--no-report", "--bootstrap", "0"])
"""


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_sigkill_then_resume_completes_without_duplicates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = write_dataset(tmp_path / "d.jsonl", standard_rows(60))
    run = tmp_path / "run"
    script = tmp_path / "run_eval.py"
    script.write_text(SCRIPT.format(tests=str(TESTS), data=str(data), run=str(run)))
    child = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while len(_lines(run / "results.jsonl")) < 10 and time.monotonic() < deadline:
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            time.sleep(0.02)
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        if child.stderr is not None:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    survived = _lines(run / "results.jsonl")
    assert 10 <= len(survived) < 62
    # a torn final write (as a kill during write() would leave) is dropped on resume
    with (run / "results.jsonl").open("a") as handle:
        handle.write('{"key": "d:99", "partial')

    grader = FakeGrader()
    monkeypatch.setattr("grader.graders.factory.make_grader", lambda *a, **k: grader)
    out = tmp_path / "pred.jsonl"
    result = CliRunner().invoke(
        app, ["eval", "--resume", str(run), "--json", "--bootstrap", "0", "--out", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    done_before = {json.loads(line)["key"] for line in survived}
    # the stored ungraded response (line 62, "FAIL") is retried too
    assert len(grader.calls) == 62 - len(done_before - {"d:62"})
    keys = [json.loads(line)["key"] for line in _lines(run / "results.jsonl")]
    assert len(keys) == len(set(keys)) == 62
    assert [json.loads(line)["line"] for line in _lines(out)] == list(range(1, 63))
    assert json.loads(result.stdout)["data"]["summary"]["overall"]["n"] == 62


def test_progress_hears_once_before_grading_then_per_result(tmp_path: Path) -> None:
    from grader.evaluation import runner
    from grader.evaluation.dataset import load_datasets

    items = load_datasets([write_dataset(tmp_path / "d.jsonl", standard_rows(12))]).items
    first_half = items[:6]
    heard: list[tuple[int, int]] = []
    runner.grade_into(
        tmp_path / "run",
        FakeGrader(),
        first_half,
        max_connections=2,
        progress=lambda state: heard.append((state.done, state.total)),
    )
    assert heard == [(0, 6)] + [(n, 6) for n in range(1, 7)]
    heard.clear()
    runner.grade_into(
        tmp_path / "run",
        FakeGrader(),
        items,
        max_connections=2,
        progress=lambda state: heard.append((state.done, state.total)),
    )
    # resumed: the first report already counts what the run directory holds
    assert heard[0] == (6, len(items))
    assert [done for done, _ in heard[1:]] == list(range(7, len(items) + 1))


def test_a_batch_grader_gets_chunks_and_its_results_land_per_chunk(tmp_path: Path) -> None:
    from grader.evaluation import runner
    from grader.evaluation.dataset import load_datasets

    items = load_datasets([write_dataset(tmp_path / "d.jsonl", standard_rows(598))]).items
    grader = SyncFakeGrader()
    landed: list[int] = []
    runner.grade_into(
        tmp_path / "run",
        grader,
        items,
        max_connections=1,
        progress=lambda state: landed.append(len(_lines(tmp_path / "run" / "results.jsonl"))),
    )
    assert grader.batches == [runner.OFFLINE_CHUNK, runner.OFFLINE_CHUNK, 600 - 512]
    assert len(_lines(tmp_path / "run" / "results.jsonl")) == 600
    # written as each result is reported, not at the end of the run
    assert landed[runner.OFFLINE_CHUNK] == runner.OFFLINE_CHUNK


def test_a_run_ends_with_one_line_per_response_in_input_order(tmp_path: Path) -> None:
    from grader.evaluation import runner
    from grader.evaluation.dataset import load_datasets

    items = load_datasets([write_dataset(tmp_path / "d.jsonl", standard_rows(12))]).items
    results = tmp_path / "run" / "results.jsonl"
    first = runner.grade_into(
        tmp_path / "run", FakeGrader(delay=0.01), items[6:], max_connections=4
    )
    assert "ungraded" in {r.verdict for r in first.values()}  # graded again, appended, on resume
    runner.grade_into(tmp_path / "run", FakeGrader(delay=0.01), items, max_connections=4)
    keys = [json.loads(line)["key"] for line in _lines(results)]
    assert keys == [item.key for item in items]
    assert runner.read_results(tmp_path / "run") == runner.grade_into(
        tmp_path / "run", FakeGrader(), items, max_connections=4
    )


def test_a_run_keeps_the_objects_alive_at_its_start_out_of_garbage_collection(
    tmp_path: Path,
) -> None:
    import gc

    from grader.evaluation import runner
    from grader.evaluation.dataset import load_datasets

    items = load_datasets([write_dataset(tmp_path / "d.jsonl", standard_rows(4))]).items
    frozen_during: list[int] = []

    class Watching(FakeGrader):
        async def agrade(self, card: Any, answer: str) -> Any:
            frozen_during.append(gc.get_freeze_count())
            return await super().agrade(card, answer)

    assert gc.get_freeze_count() == 0
    runner.grade_into(tmp_path / "run", Watching(), items, max_connections=2)
    assert min(frozen_during) > 10_000  # the libraries' objects, at least
    assert gc.get_freeze_count() == 0  # and collectable again afterwards

    # a heap its caller froze stays frozen
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        runner.grade_into(tmp_path / "again", Watching(), items, max_connections=2)
        assert gc.get_freeze_count() >= frozen
    finally:
        gc.unfreeze()
