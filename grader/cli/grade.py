"""`grader grade` (grade one answer), `grader rubric` (store key points), `grader config`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

from grader.exitcodes import ExitCode

if TYPE_CHECKING:
    from grader.graders.base import Grader
    from grader.models import Card
    from grader.settings import Settings

GraderChoice = Literal["auto", "offline", "llm"]
ModeChoice = Literal["tools", "json", "md_json", "json_schema"]

JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON envelope.")]
ModelOption = Annotated[
    str | None, typer.Option("--model", help="Model name (else GRADER_MODEL, config.toml).")
]
BaseUrlOption = Annotated[
    str | None,
    typer.Option("--base-url", help="OpenAI-compatible endpoint (else OPENAI_BASE_URL, config)."),
]
ModeOption = Annotated[
    ModeChoice | None,
    typer.Option("--mode", help="instructor mode: tools, json, md_json or json_schema."),
]
NoLogOption = Annotated[
    bool, typer.Option("--no-log", help="Do not log LLM calls to $GRADER_HOME/llm.sqlite3.")
]


def _settings(
    model: str | None, base_url: str | None, mode: str | None, no_log: bool
) -> tuple[Path, Settings]:
    from grader.paths import grader_home
    from grader.settings import resolve_settings

    home = grader_home()
    settings = resolve_settings(
        home, model=model, base_url=base_url, mode=mode, log=False if no_log else None
    )
    return home, settings


def build_grader(
    kind: GraderChoice, settings: Settings, home: Path, deck: Sequence[Card] = ()
) -> Grader:
    """The grader for `grader grade` (tests replace this to inject a fake)."""
    from grader.graders.factory import make_grader
    from grader.render import notice

    return make_grader(kind, settings, home, notice, context=deck)


def _read_answer(answer: str) -> str:
    from grader.errors import InputError

    if answer == "-":
        data = sys.stdin.buffer.read()
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"not UTF-8 text (byte 0x{data[exc.start]:02x})", path="stdin"
            ) from None
    else:
        text = answer
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:  # bytes that were not UTF-8 arrive as lone surrogates
            raise InputError("ANSWER is not UTF-8 text") from None
    if not text.strip():
        raise InputError("ANSWER is empty (pass the text, or - to read it from stdin)")
    return text


def grade(
    deck: Annotated[Path, typer.Argument(help="Deck file.", show_default=False)],
    card_id: Annotated[str, typer.Argument(help="Card id.", show_default=False)],
    answer: Annotated[str, typer.Argument(help="The answer; - reads stdin.", show_default=False)],
    grader_kind: Annotated[
        GraderChoice,
        typer.Option("--grader", help="auto (LLM when configured, else offline), offline, llm."),
    ] = "auto",
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    mode: ModeOption = None,
    no_log: NoLogOption = False,
    json_output: JsonOption = False,
) -> None:
    """Grade ANSWER to card CARD_ID of DECK against the card's rubric."""
    from grader.deckfile import load_deck
    from grader.errors import NotFoundError
    from grader.render import print_json

    loaded = load_deck(deck)
    card = loaded.deck.card(card_id)
    if card is None:
        raise NotFoundError(f"{deck}: no card with id {card_id!r}")
    text = _read_answer(answer)
    home, settings = _settings(model, base_url, mode, no_log)
    grader = build_grader(grader_kind, settings, home, loaded.deck.cards)
    try:
        result = grader.grade(card, text)
    finally:
        grader.close()
    if json_output:
        print_json("grade", {"deck": deck.as_posix(), "card_id": card.id, "grade": result})
    else:
        from rich.console import Console

        from grader.cli.grade_view import render_grade, render_reference

        console = Console(highlight=False, soft_wrap=True)
        console.print(render_grade(result))
        console.print()
        console.print(render_reference(card))
    if result.verdict == "ungraded":  # the grade is printed, and a script sees the failure
        raise typer.Exit(ExitCode.ERROR)


def rubric(
    deck: Annotated[Path, typer.Argument(help="Deck file.", show_default=False)],
    heuristic: Annotated[
        bool,
        typer.Option("--heuristic", help="Derive key points from the answers, without an LLM."),
    ] = False,
    card_ids: Annotated[
        list[str] | None, typer.Option("--card", help="Only this card (repeatable).")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace rubrics already stored in the deck.")
    ] = False,
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    mode: ModeOption = None,
    no_log: NoLogOption = False,
    json_output: JsonOption = False,
) -> None:
    """Store each card's rubric (its key points) in DECK: by the LLM, or --heuristic."""
    from grader.deckfile import load_deck, save_deck
    from grader.errors import ConfigError, GraderError, NotFoundError
    from grader.expand.proposals import deck_lock
    from grader.llm.rubrics import apply_rubrics, heuristic_rubrics
    from grader.render import notice, print_json

    loaded = load_deck(deck)
    cards = loaded.deck.cards
    if card_ids:
        missing = [i for i in card_ids if loaded.deck.card(i) is None]
        if missing:
            raise NotFoundError(f"{deck}: no card with id {missing[0]!r}")
        cards = [c for c in cards if c.id in set(card_ids)]
    todo = [c for c in cards if force or not c.rubric or c.rubric_is_stale()]
    skipped = len(cards) - len(todo)

    if heuristic:
        outcomes = heuristic_rubrics(todo)
    else:
        home, settings = _settings(model, base_url, mode, no_log)
        if not settings.endpoint_configured:
            raise ConfigError(
                "grader rubric needs an LLM endpoint (OPENAI_API_KEY / OPENAI_BASE_URL or "
                "--base-url); use --heuristic to derive rubrics without one"
            )
        from grader.llm.adapter import LLMClient
        from grader.llm.rubrics import llm_rubrics

        client = LLMClient(settings, home)
        try:
            if todo and not json_output:
                notice(f"asking {settings.model} for key points of {len(todo)} cards")
            outcomes = llm_rubrics(client, todo)
        finally:
            client.close()

    with deck_lock(deck):
        # Re-read under the lock: someone may have edited the deck while the LLM worked.
        current = load_deck(deck).deck
        updated_deck, updated = apply_rubrics(current, outcomes)
        if updated:
            save_deck(deck, updated_deck)
    failures = [o for o in outcomes if o.error]
    stored = {o.card_id: o.key_points or [] for o in outcomes if o.card_id in set(updated)}
    summary = {
        "deck": deck.as_posix(),
        "source": "heuristic" if heuristic else "llm",
        "updated": updated,
        "skipped_existing": skipped,
        "failed": [{"card_id": o.card_id, "reason": o.error} for o in failures],
        "rubrics": stored,
    }
    if json_output:
        print_json("rubric", summary)
    else:
        from rich.console import Console
        from rich.text import Text

        console = Console(highlight=False, soft_wrap=True)
        by_id = {c.id: c for c in cards}
        for card_id in updated:
            line = Text(card_id, style="bold")
            line.append("  " + " ".join(by_id[card_id].question.split())[:70])
            console.print(line)
            for point in stored[card_id]:
                console.print(Text(f"  - {point}"))
        tail = f"{len(updated)} rubrics stored in {deck}"
        if skipped:
            tail += f"; {skipped} cards already had one (use --force to replace)"
        console.print(Text(tail))
        for failure in failures:
            notice(f"{failure.card_id}: no rubric: {failure.error}")
    if failures:
        raise GraderError(f"{len(failures)} of {len(outcomes)} rubrics could not be made")


def config(json_output: JsonOption = False) -> None:
    """Show the LLM settings in effect (the API key only as set / not set)."""
    from grader.paths import grader_home
    from grader.render import print_json
    from grader.settings import CONFIG_FILE, resolve_settings

    home = grader_home()
    settings = resolve_settings(home)
    data = {"config_file": str(home / CONFIG_FILE), **settings.public()}
    data["effective_base_url"] = settings.effective_base_url
    data["endpoint_configured"] = settings.endpoint_configured
    if json_output:
        print_json("config", data)
        return
    from rich.console import Console
    from rich.text import Text

    shown = dict(data)
    del shown["effective_base_url"]
    if settings.base_url is None:
        shown["base_url"] = f"{settings.effective_base_url} (default)"
    console = Console(highlight=False, soft_wrap=True)
    for key, value in shown.items():
        console.print(Text(f"{key}: {value}"))


def register(app: typer.Typer) -> None:
    app.command("grade")(grade)
    app.command("rubric")(rubric)
    app.command("config")(config)
