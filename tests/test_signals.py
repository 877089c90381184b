"""SIGTERM at any moment ends a command with one line and exit 143: inside the event loop
(grading tasks cancelled, their cleanup run), inside a `__del__` or an import that swallows or
converts the exception, and after the command has finished (ignored while the process ends)."""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
import typer
from typer.testing import CliRunner

from grader import asyncrun
from grader.cli import Terminated, _ErrorMappingGroup

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGTERM"), reason="needs POSIX signals")


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


@pytest.fixture
def raising_sigterm() -> Iterator[None]:
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _sigterm_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


@pytest.mark.usefixtures("raising_sigterm")
def test_sigterm_inside_a_running_task_cancels_the_run_then_calls_the_handler(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The handler runs right after os.kill, inside the main task's step: with plain asyncio.run
    it raised there, at that line, and the task ended with an exception nobody retrieved."""
    cleaned: list[int] = []
    seen_by_the_run: list[type[BaseException]] = []

    async def grading(n: int) -> None:
        try:
            await asyncio.sleep(10)
        finally:
            cleaned.append(n)

    async def run_all() -> None:
        tasks = [asyncio.create_task(grading(n)) for n in range(3)]
        await asyncio.sleep(0)
        try:
            _sigterm_self()
            await asyncio.gather(*tasks)
        except BaseException as exc:
            seen_by_the_run.append(type(exc))
            raise

    raised = None
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        try:
            asyncrun.run(run_all())
        except Terminated:
            raised = Terminated
        gc.collect()  # an unretrieved task exception is logged when the task is collected
    assert raised is Terminated
    assert seen_by_the_run == [asyncio.CancelledError]
    assert sorted(cleaned) == [0, 1, 2]
    assert [r.getMessage() for r in caplog.records] == []
    assert signal.getsignal(signal.SIGTERM) is _raise_terminated


@pytest.mark.usefixtures("raising_sigterm")
def test_a_run_without_a_signal_returns_its_value_and_restores_the_handler() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert asyncrun.run(answer()) == 42
    assert signal.getsignal(signal.SIGTERM) is _raise_terminated


def _app() -> typer.Typer:
    app = typer.Typer(cls=_ErrorMappingGroup, pretty_exceptions_enable=False)

    class SignalsWhenCollected:
        def __del__(self) -> None:
            _sigterm_self()

    @app.command()
    def swallowed() -> None:
        try:
            _sigterm_self()
            time.sleep(1)
        except BaseException:  # as some libraries do
            pass

    @app.command()
    def converted() -> None:
        try:
            _sigterm_self()
            time.sleep(1)
        except BaseException as exc:  # as a C extension's failed import does
            raise ImportError("initialization failed") from exc

    @app.command()
    def in_del() -> None:
        SignalsWhenCollected()  # dropped at once: the handler raises inside __del__

    @app.command()
    def plain() -> None:
        print("done")

    return app


@pytest.mark.parametrize("command", ["swallowed", "converted", "in-del"])
def test_a_sigterm_whose_exception_is_lost_still_ends_the_command_with_one_line(
    command: str,
) -> None:
    before = signal.getsignal(signal.SIGTERM)
    result = CliRunner().invoke(_app(), [command])
    assert result.exit_code == 143
    assert result.stderr == "error: terminated\n"
    assert signal.getsignal(signal.SIGTERM) == before


def test_the_handler_and_unraisable_hook_are_restored_after_a_command() -> None:
    before = (signal.getsignal(signal.SIGTERM), sys.unraisablehook)
    result = CliRunner().invoke(_app(), ["plain"])
    assert result.exit_code == 0
    assert result.stdout == "done\n"
    assert (signal.getsignal(signal.SIGTERM), sys.unraisablehook) == before


def test_a_sigterm_after_the_command_has_finished_does_not_kill_the_process() -> None:
    """Finalization hands a Python handler's signal back to its default action: a finished
    command would end with -15 and no message. The entry point ignores it instead."""
    snippet = (
        "import os, signal, sys\n"
        "sys.argv = ['grader', '--help']\n"
        "from grader.cli import main\n"
        "try:\n"
        "    main()\n"
        "except SystemExit as exc:\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "    print('still here', file=sys.stderr)\n"
        "    raise\n"
    )
    child = subprocess.run(
        [sys.executable, "-c", snippet], capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 0
    assert child.stderr == "still here\n"
