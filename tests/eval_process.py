"""`grader eval` in a child process, for the tests that kill or signal it mid-run."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from grader.evaluation import runner
from grader.testing.openai_server import wait_until


@contextlib.contextmanager
def eval_process(args: list[str], home: Path) -> Iterator[subprocess.Popen[str]]:
    """Run `grader eval ARGS` with GRADER_HOME `home` (stderr kept as text); kill it on the way
    out if it still runs."""
    child = subprocess.Popen(
        [sys.executable, "-m", "grader", "eval", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "GRADER_HOME": str(home)},
    )
    try:
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()


def results_in(run: Path) -> list[str]:
    """The lines of the run's results file so far."""
    path = run / runner.RESULTS_FILE
    return path.read_text().splitlines() if path.exists() else []


def wait_for_results(run: Path, count: int) -> None:
    assert wait_until(lambda: len(results_in(run)) >= count, 60), f"fewer than {count} results"
