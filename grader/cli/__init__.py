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


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


class _ErrorMappingGroup(TyperGroup):
    """Turns GraderError into one stderr line and an exit code; Ctrl-C into 130, SIGTERM 143."""

    def invoke(self, ctx: Context) -> Any:
        import signal
        import threading

        from grader.errors import UsageError
        from grader.render import error_line

        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _raise_terminated) if main else None
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            error_line(str(exc))
            raise typer.Exit(ExitCode.USAGE) from None
        except GraderError as exc:
            error_line(str(exc))
            raise typer.Exit(ExitCode.ERROR) from None
        except Terminated:
            error_line("terminated")
            raise typer.Exit(ExitCode.TERMINATED) from None
        except KeyboardInterrupt:
            error_line("interrupted")
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)


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
    app()
