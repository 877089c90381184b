"""`grader practice` (an interactive study session) and `grader stats`."""

from __future__ import annotations

import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal, TextIO

import typer

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from grader.graders.base import Grader
    from grader.history import Attempt
    from grader.models import Card
    from grader.practice import EmptyPlan, PracticeSession, QueueItem
    from grader.scheduling import Override
    from grader.stats import Stats

GraderOption = Literal["auto", "offline", "llm"]

ANSWER_HELP = (
    "Type your answer (several lines are fine); an empty line submits it. "
    "An empty first line means “I don't know”. Type q alone to quit."
)
OVERRIDE_KEYS: dict[str, Override] = {"r": "right", "w": "wrong", "e": "easy"}
RATE_KEYS = "Enter accept · r I was right · w I was wrong · e easy · q quit"
SELF_RATE_KEYS = "1 not at all · 2 barely · 3 partly · 4 well · 5 perfectly · s skip · q quit"
RATING_LABELS = {"again": "Again", "hard": "Hard", "good": "Good", "easy": "Easy"}


def build_grader(
    kind: GraderOption,
    home: Path,
    model: str | None,
    base_url: str | None,
    decks: Sequence[Card] = (),
) -> Grader:
    """The session's grader (tests replace this function to inject a fake)."""
    from grader.errors import GraderError
    from grader.graders.factory import make_grader
    from grader.render import notice
    from grader.settings import resolve_settings

    settings = resolve_settings(home, model=model, base_url=base_url)
    try:
        return make_grader(kind, settings, home, notice, context=decks)
    except GraderError:
        raise
    except Exception as exc:  # a grader that cannot load is one error line, not a traceback
        raise GraderError(f"could not load the {kind} grader: {exc}") from None


def humanize_delta(delta: timedelta) -> str:
    """`in 10 min`, `in 5 h`, `in 3 days`: when a card comes back."""
    seconds = max(delta.total_seconds(), 0)
    if seconds < 3600:
        return f"in {max(round(seconds / 60), 1)} min"
    if seconds < 86400:
        return f"in {round(seconds / 3600)} h"
    days = round(seconds / 86400)
    return f"in {days} day" + ("" if days == 1 else "s")


class Quit(Exception):
    """The learner asked to stop (q or end of input)."""


class Terminal:
    """Reads answers and single keys; one keystroke when stdin is a terminal, a line otherwise."""

    def __init__(self, stdin: TextIO, out: Console) -> None:
        self.stdin = stdin
        self.out = out
        reconfigure = getattr(stdin, "reconfigure", None)
        if callable(reconfigure):  # bytes that are not UTF-8 must not end the session
            reconfigure(errors="surrogateescape")

    def _prompt(self, text: str) -> None:
        self.out.print(text, end="", markup=False, highlight=False)
        self.out.file.flush()

    def read_answer(self) -> str:
        lines: list[str] = []
        while True:
            self._prompt("> " if not lines else "… ")
            raw = self.stdin.readline()
            if raw == "":
                if lines:
                    break
                raise Quit
            # A terminal that sends Latin-1 gives lone surrogates, which no file can store:
            # keep the answer, with U+FFFD for what was not UTF-8.
            line = raw.rstrip("\r\n").encode("utf-8", "surrogateescape").decode("utf-8", "replace")
            if not lines and line.strip().lower() == "q":
                raise Quit
            if not line.strip():
                break
            lines.append(line)
        return "\n".join(lines)

    def read_key(self, prompt: str, allowed: str) -> str:
        """One of `allowed` ('' = Enter when '\\n' is allowed); q or end of input quits."""
        while True:
            self._prompt(prompt + " ")
            key = self._key()
            if key in ("\x04", "") and "\x04" not in allowed:
                raise Quit
            key = "\n" if key in ("\r", "\n") else key.lower()
            if key == "q":
                raise Quit
            if key in allowed:
                self.out.print(markup=False)
                return key
            self.out.print(
                f"  ({key.strip() or 'that key'} is not one of the choices)",
                markup=False,
                emoji=False,
            )

    def _key(self) -> str:
        if self.stdin.isatty():
            return self._raw_key()
        line = self.stdin.readline()
        if line == "":
            return ""
        stripped = line.strip()
        return stripped[0] if stripped else "\n"

    def _raw_key(self) -> str:
        import termios
        import tty

        fd = self.stdin.fileno()
        saved = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)  # keeps ISIG, so Ctrl-C still interrupts
            key = self.stdin.read(1)
        finally:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        self.out.print(key if key.isprintable() else "", markup=False, end="")
        return key


@contextmanager
def _status(err: Console, message: str) -> Iterator[None]:
    with err.status(message, spinner="dots"):
        yield


def _run_session(
    session: PracticeSession,
    queue: list[QueueItem],
    term: Terminal,
    out: Console,
    err: Console,
) -> list[Attempt]:
    from rich.text import Text

    from grader.cli.grade_view import render_grade, render_reference
    from grader.scheduling import rating_for_verdict

    done: list[Attempt] = []
    due = sum(1 for item in queue if not item.is_new)
    out.print(
        f"{len(queue)} card(s): {due} due, {len(queue) - due} new. {ANSWER_HELP}",
        markup=False,
        highlight=False,
    )
    try:
        for number, item in enumerate(queue, start=1):
            out.print()
            label = "new" if item.is_new else "due"
            out.print(
                f"[{number}/{len(queue)}] {item.deck} · {label}",
                style="dim",
                markup=False,
                emoji=False,
            )
            out.print(Text(item.card.question, style="bold"))
            answer = term.read_answer()
            answered_at = session.clock()
            with _status(err, "Grading…"):
                grade = session.grade(item, answer)
            attempt = session.record(item, answer, grade, answered_at)
            # Recorded with the grade's own rating: quitting at the rating prompt keeps it.
            done.append(attempt)
            out.print(render_grade(grade))
            out.print(render_reference(item.card))
            proposed = rating_for_verdict(grade.verdict)
            if proposed is None:
                out.print(
                    "The grader could not grade this answer, so it will not reschedule the "
                    "card. Rate how well you knew it yourself:",
                    style="magenta",
                    markup=False,
                )
                key = term.read_key(SELF_RATE_KEYS, "12345s")
                if key != "s":
                    attempt = done[-1] = session.self_rate(attempt, int(key))
            else:
                out.print(  # the keys on a line of their own: together they passed 80 columns
                    f"→ {RATING_LABELS[proposed]} (from {grade.verdict}).",
                    markup=False,
                    highlight=False,
                )
                key = term.read_key(RATE_KEYS, "\nrwe")
                if key != "\n":
                    attempt = done[-1] = session.override(attempt, OVERRIDE_KEYS[key])
            _say_saved(out, attempt, session.clock())
    except Quit:
        out.print()
    return done


def _say_saved(out: Console, attempt: Attempt, now: datetime) -> None:
    if attempt.rating is None or attempt.state_after is None:
        out.print("Saved; the card keeps its schedule.", style="dim", markup=False)
        return
    label = RATING_LABELS[attempt.rating]
    how = f"override: {attempt.override}" if attempt.override else None
    how = how or (f"self-rated {attempt.self_rating}" if attempt.self_rating else None)
    suffix = f" ({how})" if how else ""
    when = humanize_delta(attempt.state_after.due - now)
    out.print(f"Saved: {label}{suffix}; next review {when}.", style="dim", markup=False)


def _summary(attempts: list[Attempt]) -> dict[str, object]:
    from collections import Counter

    verdicts = Counter(a.verdict for a in attempts)
    ratings = Counter(a.rating or "unrated" for a in attempts)
    return {
        "answered": len(attempts),
        "verdicts": dict(verdicts),
        "ratings": dict(ratings),
        "attempts": attempts,
    }


def practice(
    decks: Annotated[list[Path], typer.Argument(help="Deck files to practise from.")],
    new: Annotated[int, typer.Option("--new", min=0, help="At most this many new cards.")] = 10,
    max_cards: Annotated[
        int, typer.Option("--max", min=1, help="At most this many cards in the session.")
    ] = 50,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Only cards with this tag (repeatable).")
    ] = None,
    grader_kind: Annotated[
        str,
        typer.Option("--grader", help="auto (LLM if an endpoint is configured), offline or llm."),
    ] = "auto",
    model: Annotated[str | None, typer.Option(help="LLM model name.")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible endpoint URL.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Session summary as JSON on stdout; dialogue on stderr.")
    ] = False,
) -> None:
    """Study: due cards first, then new ones; answer in free text, get graded, reschedule."""
    from rich.console import Console

    from grader.deckfile import load_deck
    from grader.errors import UsageError
    from grader.history import History
    from grader.paths import grader_home
    from grader.practice import PracticeSession, explain_empty_plan, plan_session
    from grader.render import print_json
    from grader.scheduling import Scheduler, utc_clock

    if grader_kind not in ("auto", "offline", "llm"):
        raise UsageError(f"--grader must be auto, offline or llm, not {grader_kind!r}")
    loaded = [load_deck(path) for path in decks]
    home = grader_home()
    err = Console(file=sys.stderr, highlight=False)
    out = err if as_json else Console(file=sys.stdout, highlight=False, soft_wrap=True)
    clock = utc_clock
    with History.open(home) as history:
        queue = plan_session(
            loaded, history, clock(), new_limit=new, max_cards=max_cards, tags=tag or ()
        )
        attempts: list[Attempt] = []
        if not queue:
            why = explain_empty_plan(loaded, history, tag or ())
            out.print(
                f"Nothing to practise: {_why_nothing(why, tag or (), clock())}",
                markup=False,
                emoji=False,
            )
        else:
            with _status(err, "Loading the grader…"):
                cards = [card for deck in loaded for card in deck.deck.cards]
                grader = build_grader(grader_kind, home, model, base_url, cards)  # type: ignore[arg-type]
            session = PracticeSession(
                grader=grader, history=history, scheduler=Scheduler(), clock=clock
            )
            try:
                attempts = _run_session(session, queue, Terminal(sys.stdin, out), out, err)
            finally:
                grader.close()
            out.print(f"Session over: {len(attempts)} answer(s) saved.", markup=False)
    if as_json:
        print_json("practice", _summary(attempts))


def _why_nothing(why: EmptyPlan, tags: Sequence[str], now: datetime) -> str:
    if tags and not why.matching:
        known = ", ".join(why.tags_in_decks) or "none"
        return f"no card carries the tag {' or '.join(tags)} (tags in these decks: {known})."
    if why.new_waiting:
        return f"no card is due, and --new 0 leaves out the {why.new_waiting} new card(s)."
    if why.next_due is not None:
        return f"no card is due; the next one is due {humanize_delta(why.next_due - now)}."
    return "the deck has no cards."


def stats(
    deck: Annotated[
        list[Path] | None, typer.Argument(help="Deck files (default: all practised decks).")
    ] = None,
    top: Annotated[int, typer.Option(min=1, help="How many most-missed cards to list.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Due today, reviewed, retention, accuracy by tag and the cards missed most."""
    from grader.deckfile import load_deck
    from grader.history import History
    from grader.paths import grader_home
    from grader.render import print_json
    from grader.scheduling import utc_clock
    from grader.stats import compute_stats

    loaded = [load_deck(path) for path in deck] if deck else None
    with History.open(grader_home()) as history:
        result = compute_stats(history, utc_clock(), loaded, top=top)
    if as_json:
        print_json("stats", result)
        return
    from rich.console import Console

    Console(file=sys.stdout, highlight=False, soft_wrap=True).print(_render_stats(result))


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.0%}"


def _render_stats(result: Stats) -> RenderableType:
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("Decks", Text(", ".join(result.decks) or "(no practice yet)"))
    if result.cards is not None:
        head.add_row("Cards", f"{result.cards} ({result.new} never reviewed)")
    head.add_row("Due today", f"{result.due_today} ({result.due_now} due now)")
    head.add_row("Reviewed today", str(result.reviewed_today))
    head.add_row("Attempts", f"{result.attempts} on {result.cards_reviewed} card(s)")
    head.add_row("Retention", f"{_pct(result.retention)} of {result.retention_reviews} review(s)")
    head.add_row("Accuracy", _pct(result.accuracy))
    score = "—" if result.mean_score is None else f"{result.mean_score:.2f}"
    head.add_row("Mean score", score)
    if result.next_due is not None:
        head.add_row("Next due", result.next_due.astimezone().strftime("%Y-%m-%d %H:%M"))
    parts: list[RenderableType] = [head]
    if result.by_tag:
        tags = Table(title="Accuracy by tag", title_justify="left")
        for column in ("tag", "attempts", "accuracy", "mean score"):
            tags.add_column(column, justify="left" if column == "tag" else "right")
        for row in result.by_tag:
            mean = "—" if row.mean_score is None else f"{row.mean_score:.2f}"
            tags.add_row(Text(row.tag), str(row.attempts), _pct(row.accuracy), mean)
        parts.append(tags)
    if result.most_missed:
        missed = Table(title="Most missed", title_justify="left")
        for column in ("misses", "card", "question"):
            missed.add_column(column, justify="right" if column == "misses" else "left")
        for card in result.most_missed:
            missed.add_row(
                f"{card.misses}/{card.attempts}", Text(card.card_id), Text(card.question)
            )
        parts.append(missed)
    return Group(*parts)


def register(app: typer.Typer) -> None:
    app.command("practice")(practice)
    app.command("stats")(stats)
