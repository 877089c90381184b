"""Eval grading in worker processes: one shared connection limit, the parent alone writes results,
a dead worker leaves `ungraded` (never `incorrect`), and a killed run leaves no worker behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eval_fakes import grade_responder, standard_rows, write_dataset
from eval_process import eval_process, results_in, wait_for_results
from fake_worker import scripted
from typer.testing import CliRunner

from grader.cli import app
from grader.evaluation import runner
from grader.evaluation.dataset import load_datasets
from grader.evaluation.workers import (
    QUEUED_PER_WORKER,
    WorkerPlan,
    auto_workers,
    can_fork,
    connection_shares,
)
from grader.settings import Settings
from grader.testing.openai_server import InFlight, LoopbackOpenAIServer, Reply, wait_until

TESTS = Path(__file__).resolve().parent
SECRET = "sk-worker-test-secret"


START_METHODS = ["fork", "spawn"] if can_fork() else ["spawn"]


def fake_workers(home: Path, workers: int, mode: str, limit: int = 0, *, start: str) -> WorkerPlan:
    """Workers that grade with a scripted grader, forked from this process or spawned."""
    settings = Settings(base_url="http://127.0.0.1:9/v1", api_key=SECRET, model="m")
    if start == "fork":
        return WorkerPlan(
            settings, home, workers, make_grader=scripted(mode, limit), preload=lambda _: None
        )
    argv = (sys.executable, str(TESTS / "fake_worker.py"), mode, str(limit))
    return WorkerPlan(settings, home, workers, command=argv)


def grade(tmp_path: Path, plan: WorkerPlan, rows: int, connections: int) -> dict[str, Any]:
    data = write_dataset(tmp_path / "d.jsonl", standard_rows(rows))
    items = load_datasets([data]).items
    results = runner.grade_into(
        tmp_path / "run", None, items, max_connections=connections, workers=plan
    )
    return {"items": items, "results": results}


def test_auto_uses_workers_only_for_large_runs_with_many_connections() -> None:
    assert auto_workers(32, 5000, cpus=2) == 3  # one more than the cores
    assert auto_workers(16, 5000, cpus=2) == 2
    assert auto_workers(64, 5000, cpus=8) == 6
    assert auto_workers(8, 5000, cpus=8) == 1  # the default limit: one process keeps up
    assert auto_workers(32, 100, cpus=8) == 1  # start-up would cost more than it saves
    assert auto_workers(32, 5000, cpus=1) == 1


def test_the_connection_limit_is_split_not_multiplied() -> None:
    assert connection_shares(32, 2) == [16, 16]
    assert connection_shares(5, 2) == [3, 2]
    assert connection_shares(2, 4) == [1, 1]
    assert sum(connection_shares(33, 4)) == 33


@pytest.mark.parametrize("start", START_METHODS)
def test_workers_grade_everything_and_the_key_travels_over_the_pipe(
    tmp_path: Path, start: str
) -> None:
    plan = fake_workers(tmp_path / "home", 2, "good", start=start)
    assert not any(SECRET in part for part in plan.command or ())
    out = grade(tmp_path, plan, 40, connections=4)
    results = out["results"]
    assert len(results) == len(out["items"]) == 42
    assert {r.verdict for r in results.values()} == {"correct"}
    feedback = {r.grade.feedback for r in results.values()}
    assert all(f.endswith("key received") for f in feedback)
    assert len({f.split()[1] for f in feedback}) == 2  # both worker processes graded
    lines = (tmp_path / "run" / runner.RESULTS_FILE).read_text().splitlines()
    assert len(lines) == 42  # one writer: no torn or interleaved lines


@pytest.mark.parametrize("start", START_METHODS)
def test_a_worker_grades_its_share_at_once_however_many_wait_in_it(
    tmp_path: Path, start: str
) -> None:
    assert QUEUED_PER_WORKER > 0  # the parent hands each worker more than its share
    plan = fake_workers(tmp_path / "home", 2, "good", start=start)
    out = grade(tmp_path, plan, 40, connections=4)
    peaks = {int(r.grade.feedback.split()[3]) for r in out["results"].values()}
    assert max(peaks) == 2  # each worker's share of 4 connections, reached and never passed


@pytest.mark.parametrize("start", START_METHODS)
def test_a_dying_worker_leaves_its_responses_ungraded(tmp_path: Path, start: str) -> None:
    plan = fake_workers(tmp_path / "home", 2, "die-after", 3, start=start)
    out = grade(tmp_path, plan, 40, connections=4)
    results = out["results"]
    assert len(results) == 42
    verdicts = [r.verdict for r in results.values()]
    assert 6 <= verdicts.count("correct") < 42  # at least three per worker, then each exits
    assert "incorrect" not in verdicts
    reasons = {r.grade.reason for r in results.values() if r.verdict == "ungraded"}
    assert "grader failed: grading worker exited with code 7: worker crashed on purpose" in reasons
    assert reasons <= {
        "grader failed: grading worker exited with code 7: worker crashed on purpose",
        "grader failed: no grading worker left",
    }
    # resuming grades exactly the ungraded ones again
    again = runner.grade_into(
        tmp_path / "run",
        None,
        out["items"],
        max_connections=4,
        workers=fake_workers(tmp_path / "home", 2, "good", start=start),
    )
    assert [r.verdict for r in again.values()] == ["correct"] * 42


def test_workers_that_exit_at_once_leave_everything_ungraded(tmp_path: Path) -> None:
    settings = Settings(base_url="http://127.0.0.1:9/v1", model="m")
    argv = (sys.executable, "-c", "import sys; sys.stderr.write('no luck\\n'); sys.exit(5)")
    plan = WorkerPlan(settings, tmp_path / "home", 2, command=argv)
    out = grade(tmp_path, plan, 8, connections=2)
    reasons = {r.grade.reason for r in out["results"].values()}
    assert len(out["results"]) == 10
    assert reasons <= {
        "grader failed: grading worker exited with code 5: no luck",
        "grader failed: no grading worker left",
    }
    assert "grader failed: grading worker exited with code 5: no luck" in reasons


@pytest.mark.parametrize("start", START_METHODS)
def test_a_worker_failure_never_shows_the_key(tmp_path: Path, start: str) -> None:
    plan = fake_workers(tmp_path / "home", 2, "leak-key", start=start)
    out = grade(tmp_path, plan, 4, connections=2)
    reasons = {r.grade.reason for r in out["results"].values()}
    assert any("failed with key ***" in reason for reason in reasons), reasons
    assert not any(SECRET in reason for reason in reasons)


def test_cli_workers_grade_through_the_real_stack(tmp_path: Path) -> None:
    counted = InFlight(grade_responder, hold=0.05)
    data = write_dataset(tmp_path / "d.jsonl", standard_rows(30))
    out = tmp_path / "pred.jsonl"
    with LoopbackOpenAIServer(responder=counted) as server:
        result = CliRunner().invoke(
            app,
            [
                "eval",
                str(data),
                "--grader",
                "llm",
                "--base-url",
                server.base_url,
                "-c",
                "4",
                "--workers",
                "2",
                "--bootstrap",
                "0",
                "--no-report",
                "--json",
                "--out",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.stderr
        assert len(server.requests) == 32
    assert counted.peak == 4  # both workers busy, and never more than the shared limit
    overall = json.loads(result.stdout)["data"]["summary"]["overall"]
    assert overall["n"] == 32 and overall["ungraded"] == 0
    assert [json.loads(line)["line"] for line in out.read_text().splitlines()] == list(range(1, 33))


def test_a_bad_ssl_cert_file_leaves_the_run_ungraded_with_its_reason_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parent makes the TLS context before forking; a missing SSL_CERT_FILE must not stop
    it there: each worker's client meets it and says so, as without workers."""
    from grader.llm import adapter

    missing = tmp_path / "missing-ca.pem"
    monkeypatch.setenv("SSL_CERT_FILE", str(missing))
    adapter.tls_context.cache_clear()
    data = write_dataset(tmp_path / "d.jsonl", standard_rows(6))
    try:
        with LoopbackOpenAIServer(responder=grade_responder) as server:
            args = ["eval", str(data), "--grader", "llm", "--base-url", server.base_url]
            args += ["-c", "4", "--workers", "2", "--bootstrap", "0", "--no-report"]
            result = CliRunner().invoke(app, args)
    finally:
        adapter.tls_context.cache_clear()
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.stderr.splitlines()[0] == (
        f"ungraded (8): cannot load the TLS certificates from {missing}: [Errno 2] No such file "
        "or directory"
    )
    assert result.stderr.splitlines()[-1].startswith("error: none of the 8 responses could be")


@pytest.mark.skipif(not can_fork(), reason="workers are forked only on Linux")
def test_forked_workers_hold_only_their_own_pipes_and_a_killed_one_leaves_ungraded(
    tmp_path: Path,
) -> None:
    seen: dict[str, Any] = {"requests": 0}
    lock = threading.Lock()
    results_file = tmp_path / "run" / runner.RESULTS_FILE

    def open_files(pid: int) -> list[str]:
        targets = []
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(FileNotFoundError):
                targets.append(os.readlink(fd))
        return targets

    def responder(body: dict[str, Any]) -> Reply:
        with lock:
            seen["requests"] += 1
            if seen["requests"] == 20:  # mid-run: look at the workers, then kill one
                workers = sorted(_children(os.getpid()))
                seen["workers"] = workers
                seen["files"] = {f for pid in workers for f in open_files(pid)}
                seen["ours"] = set(open_files(os.getpid()))
                seen["cmdlines"] = {Path(f"/proc/{p}/cmdline").read_bytes() for p in workers}
                os.kill(seen["workers"][0], signal.SIGKILL)
        return grade_responder(body)

    data = write_dataset(tmp_path / "d.jsonl", standard_rows(40))
    items = load_datasets([data]).items
    with LoopbackOpenAIServer(responder=responder) as server:
        settings = Settings(base_url=server.base_url, cache=False, log=False)
        plan = WorkerPlan(settings, tmp_path / "home", 2)
        results = runner.grade_into(tmp_path / "run", None, items, max_connections=4, workers=plan)
    assert len(seen["workers"]) == 2
    # forked from this process (same command line), not new interpreters
    assert seen["cmdlines"] == {Path("/proc/self/cmdline").read_bytes()}
    # nothing of ours stays open in a worker (the results file, the server's sockets), only the
    # pipes between us. Paths are compared, so a device both sides opened on their own is left
    # out: a worker's first request runs `uname -p` with stderr to /dev/null (openai's platform
    # headers), and the check may catch it open.
    assert str(results_file) in seen["ours"]
    shared = {
        f
        for f in seen["files"] & seen["ours"]
        if f.startswith(("/", "socket:")) and not f.startswith("/dev/")
    }
    assert shared == set()
    assert len(results) == 42
    ungraded = [r.grade.reason for r in results.values() if r.verdict == "ungraded"]
    # what the killed worker held (its share in flight, the rest queued); the other did the rest
    assert 1 <= len(ungraded) <= 2 + QUEUED_PER_WORKER
    assert set(ungraded) == {"grader failed: grading worker exited with code -9"}


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.update(int(p) for p in text)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


@contextlib.contextmanager
def stopped_midway(
    tmp_path: Path, workers: int = 2
) -> Iterator[tuple[Path, subprocess.Popen[str], set[int]]]:
    """An LLM eval of 122 responses in a child process with `workers` grading workers (1: graded
    in the process itself), once 10 grades are in: its run directory, the process and its
    workers' pids. The loopback server answers until the block ends, so a resume inside it can
    finish the run."""
    data = write_dataset(tmp_path / "d.jsonl", standard_rows(120))
    run = tmp_path / "run"
    with LoopbackOpenAIServer(responder=grade_responder, delay=0.1) as server:
        args = [str(data), "--run-dir", str(run), "--grader", "llm", "--base-url", server.base_url]
        args += ["--bootstrap", "0", "-c", "4", "--workers", str(workers), "--no-report"]
        with eval_process(args, tmp_path / "home") as child:
            wait_for_results(run, 10)
            yield run, child, _children(child.pid)


def resumed_to_completion(run: Path, *options: str) -> Any:
    """`grader eval --resume RUN` in this process, checked to leave all 122 responses once."""
    args = ["eval", "--resume", str(run), *options, "--json", "--bootstrap", "0", "--no-report"]
    resumed = CliRunner().invoke(app, args)
    assert resumed.exit_code == 0, resumed.stderr
    keys = [json.loads(line)["key"] for line in results_in(run)]
    assert len(keys) == len(set(keys)) == 122
    return json.loads(resumed.stdout)["data"]


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_sigkill_of_the_parent_leaves_no_worker_and_resume_completes(tmp_path: Path) -> None:
    with stopped_midway(tmp_path) as (run, child, workers):
        assert len(workers) == 2
        child.kill()
        assert wait_until(lambda: not any(_alive(p) for p in workers), 15)
        assert 10 <= len(results_in(run)) < 122
        resumed = resumed_to_completion(run, "--workers", "2")
    assert resumed["summary"]["overall"]["ungraded"] == 0


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_is_handled_as_ctrl_c_and_says_how_to_resume(tmp_path: Path, workers: int) -> None:
    """With one process the signal lands inside the event loop, among the grading tasks: they
    are cancelled and the command ends with two lines, not a task's traceback."""
    with stopped_midway(tmp_path, workers) as (run, child, pids):
        child.terminate()
        _, stderr = child.communicate(timeout=20)
        assert child.returncode == 143
        assert stderr.splitlines() == [
            f"results so far are in {run}; continue with: grader eval --resume {run}",
            "error: terminated",
        ]
        assert wait_until(lambda: not any(_alive(p) for p in pids), 15)
        resumed_to_completion(run)
