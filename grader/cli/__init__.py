"""The `grader` command line: a thin root that mounts one module per command group."""

from __future__ import annotations

from typing import Any

import typer
from typer._click.core import Context
from typer.core import TyperGroup

from grader.errors import GraderError
from grader.exitcodes import ExitCode


class Terminated(KeyboardInterrupt):
    """SIGTERM (a CI timeout, `kill`), handled as Ctrl-C is: work in progress is saved and an
    interrupted eval says how to resume; the exit code is 143."""


class _SigtermWatch:
    """Raises Terminated on SIGTERM, and remembers that it came: an exception raised at an
    arbitrary point can be swallowed (inside a `__del__`, printed as "Exception ignored") or turned
    into another (a C extension's import fails with ImportError), and the command must still end
    as terminated, with one line."""

    def __init__(self) -> None:
        self.received = False

    def handle(self, signum: int, frame: object) -> None:
        self.received = True
        raise Terminated

    def quiet(self, hook: Any) -> Any:
        def unraisable(info: Any) -> None:
            if not (self.received and issubclass(info.exc_type, KeyboardInterrupt)):
                hook(info)

        return unraisable


class _ErrorMappingGroup(TyperGroup):
    """Turns GraderError into one stderr line and an exit code; Ctrl-C into 130, SIGTERM 143."""

    def invoke(self, ctx: Context) -> Any:
        import signal
        import sys
        import threading

        main = threading.current_thread() is threading.main_thread()
        if not main:
            return self._invoke_mapping_errors(ctx, None)
        watch = _SigtermWatch()
        previous = signal.signal(signal.SIGTERM, watch.handle)
        hook = sys.unraisablehook
        sys.unraisablehook = watch.quiet(hook)
        try:
            return self._invoke_mapping_errors(ctx, watch)
        finally:
            signal.signal(signal.SIGTERM, previous)
            sys.unraisablehook = hook

    def _invoke_mapping_errors(self, ctx: Context, watch: _SigtermWatch | None) -> Any:
        from grader.errors import UsageError
        from grader.render import error_line

        def terminated() -> typer.Exit:
            error_line("terminated")
            return typer.Exit(ExitCode.TERMINATED)

        try:
            result = super().invoke(ctx)
        except BaseException as exc:
            if watch is not None and watch.received:
                raise terminated() from None
            if isinstance(exc, UsageError):
                error_line(str(exc))
                raise typer.Exit(ExitCode.USAGE) from None
            if isinstance(exc, GraderError):
                error_line(str(exc))
                raise typer.Exit(ExitCode.ERROR) from None
            if isinstance(exc, KeyboardInterrupt):
                error_line("interrupted")
                raise typer.Exit(ExitCode.INTERRUPTED) from None
            raise
        if watch is not None and watch.received:  # swallowed on the way
            raise terminated()
        return result


def build_app() -> typer.Typer:
    from grader.cli import deck, io
    from grader.cli import eval as eval_cli
    from grader.cli import expand as expand_cli
    from grader.cli import grade as grade_cli
    from grader.cli import practice as practice_cli

    app = typer.Typer(
        name="grader",
        cls=_ErrorMappingGroup,
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        help="Grade free-text flashcard answers, practise with FSRS, grow reviewed decks.",
    )
    app.add_typer(deck.app, name="deck")
    app.add_typer(eval_cli.app, name="eval")
    io.register(app)
    grade_cli.register(app)
    expand_cli.register(app)
    practice_cli.register(app)
    return app


app = build_app()


def main() -> None:
    """The console entry point: `app()`, and a clean end however the process is told to stop.

    After Ctrl-C or SIGTERM the stack has unwound (results saved, files closed) but the exception
    may have landed inside a half-done import or a library's thread; interpreter finalization
    then can crash (a fatal error, exit -6), so the process flushes its output and ends at once.
    Once a command has finished, SIGTERM is ignored while its process winds down (a moment):
    its work is done, and interpreter finalization would otherwise hand the signal back to its
    default action, ending a finished command with -15 and no message.
    """
    import signal

    try:
        app()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else ExitCode.ERROR if exc.code else 0
        if code in (ExitCode.INTERRUPTED, ExitCode.TERMINATED):
            _exit_now(code)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise


def _exit_now(code: int) -> None:
    import contextlib
    import os
    import sys

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed or broken pipe
            stream.flush()
    os._exit(code)
