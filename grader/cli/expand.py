"""`grader expand` (propose cards for review) and `grader review` (decide on them)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console

    from grader.expand.checks import CheckLimits, Encoder
    from grader.expand.run import ExpandResult
    from grader.models import CardProposal
    from grader.review import ReviewOutcome
    from grader.settings import Settings

JsonOption = Annotated[bool, typer.Option("--json", help="Print a JSON envelope.")]
DeckArgument = Annotated[Path, typer.Argument(help="Deck file.", show_default=False)]
Strategy = Literal["auto", "llm", "reverse", "list-item", "cloze"]


def register(app: typer.Typer) -> None:
    """Mount `expand` and `review` on the root app."""
    app.command("expand")(expand_command)
    app.command("review")(review_command)


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def _settings(model: str | None, base_url: str | None, mode: str | None, no_log: bool) -> Settings:
    from grader.paths import grader_home
    from grader.settings import resolve_settings

    return resolve_settings(
        grader_home(), model=model, base_url=base_url, mode=mode, log=False if no_log else None
    )


def expand_command(
    deck: DeckArgument,
    n: Annotated[int, typer.Option("-n", "--count", help="How many proposals to add.")] = 10,
    from_ids: Annotated[
        list[str] | None,
        typer.Option(
            "--from", help="Ground proposals in this card (repeatable).", show_default=False
        ),
    ] = None,
    tag: Annotated[
        str | None, typer.Option("--tag", help="Only expand from cards with this tag.")
    ] = None,
    instructions: Annotated[
        str | None, typer.Option("--instructions", help="Extra guidance for the LLM proposer.")
    ] = None,
    strategy: Annotated[
        Strategy,
        typer.Option(
            "--strategy",
            help="auto: llm when an endpoint is configured, else the deterministic strategies.",
        ),
    ] = "auto",
    model: Annotated[str | None, typer.Option("--model", help="LLM model name.")] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint URL.")
    ] = None,
    mode: Annotated[
        str | None, typer.Option("--mode", help="instructor mode: tools, json, md_json...")
    ] = None,
    no_log: Annotated[bool, typer.Option("--no-log", help="Do not log LLM calls.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Propose N new cards for DECK; they wait in DECK's proposals file until reviewed."""
    from grader.errors import ConfigError, UsageError
    from grader.expand.run import deterministic_strategies, expand_deterministic
    from grader.expand.similarity import load_encoder
    from grader.render import notice, print_json

    if n < 1:
        raise UsageError("-n must be at least 1")
    from grader.deckfile import load_deck
    from grader.expand.run import select_sources

    select_sources(load_deck(deck).deck, from_ids or (), tag)  # bad input fails before any work
    settings = _settings(model, base_url, mode, no_log)
    chosen = strategy
    if strategy == "auto":
        chosen = "llm" if settings.endpoint_configured else "auto"
        if chosen == "auto":
            notice(
                "note: no LLM endpoint configured; proposing with the deterministic strategies "
                "(reverse, list-item, cloze)"
            )
    if chosen == "llm" and not settings.endpoint_configured:
        raise ConfigError(
            "--strategy llm needs an endpoint: set OPENAI_API_KEY and/or OPENAI_BASE_URL, "
            "pass --base-url, or write base_url in $GRADER_HOME/config.toml"
        )
    if chosen != "llm" and instructions:
        notice("note: --instructions only guide the llm strategy; ignored")
    encoder, limits = load_encoder(notice)
    if chosen == "llm":
        from grader.expand.llm import expand_llm
        from grader.paths import grader_home

        result = expand_llm(
            deck,
            n,
            settings=settings,
            home=grader_home(),
            encoder=encoder,
            limits=limits,
            from_ids=from_ids or (),
            tag=tag,
            instructions=instructions,
            progress=not json_output,
        )
    else:
        result = expand_deterministic(
            deck,
            n,
            deterministic_strategies(chosen),
            encoder,
            limits,
            from_ids=from_ids or (),
            tag=tag,
        )
    if json_output:
        print_json("expand", _expand_data(result))
    else:
        _print_expand(result, deck)
    if result.failures:
        raise typer.Exit(1)


def _expand_data(result: ExpandResult) -> dict[str, object]:
    data = result.model_dump(mode="json")
    data["summary"] = {
        "proposed": len(result.proposed),
        "flagged": result.flagged,
        "rejected": len(result.rejected),
        "rejected_by_check": result.rejected_by_check(),
        "total_tokens": result.usage.total_tokens,
    }
    return data


def _print_expand(result: ExpandResult, deck: Path) -> None:
    from rich.table import Table
    from rich.text import Text

    from grader.expand.checks import outcome

    out = _console()
    if result.proposed:
        table = Table("id", "strategy", "question", "checks", box=None, pad_edge=False)
        for proposal in result.proposed:
            flags = "; ".join(c.reason for c in proposal.checks if c.outcome == "flag")
            table.add_row(
                Text(proposal.id),
                Text(proposal.strategy),
                Text(_one_line(proposal.question)),
                Text(f"flag: {flags}" if outcome(proposal) == "flag" else "pass"),
            )
        out.print(table)
    by_check = ", ".join(f"{k} {v}" for k, v in sorted(result.rejected_by_check().items()))
    summary = (
        f"proposed {len(result.proposed)} of {result.requested} ({result.flagged} flagged); "
        f"rejected {len(result.rejected)} by the checks" + (f" ({by_check})" if by_check else "")
    )
    out.print(Text(summary))
    if len(result.proposed) < result.requested and not result.failures:
        out.print(
            Text(
                "no more candidates survived the checks"
                if result.rejected
                else "no more candidates: the cards give the strategies nothing else to work "
                "from (docs/expand-review.md says what each one uses)"
            )
        )
    err = _console(stderr=True)
    if result.model is not None:
        cost = f"; estimated cost ${result.cost_usd:.4f}" if result.cost_usd is not None else ""
        err.print(
            Text(
                f"{result.model}: {result.usage.prompt_tokens} prompt + "
                f"{result.usage.completion_tokens} completion tokens{cost}"
            )
        )
    for failure in result.failures:
        err.print(Text(f"error: {failure}"))
    if result.proposed:
        out.print(Text(f"stored in {result.proposals_file}; review with: grader review {deck}"))


def _one_line(text: str, width: int = 90) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def review_command(
    deck: DeckArgument,
    ids: Annotated[
        list[str] | None,
        typer.Argument(help="Proposal ids for --approve / --reject.", show_default=False),
    ] = None,
    approve: Annotated[
        bool, typer.Option("--approve", help="Approve the given proposal ids into the deck.")
    ] = False,
    reject: Annotated[
        bool, typer.Option("--reject", help="Reject the given proposal ids.")
    ] = False,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (with --reject).")] = None,
    list_only: Annotated[bool, typer.Option("--list", help="List proposals and exit.")] = False,
    status: Annotated[
        str,
        typer.Option("--status", help="With --list: pending, approved, rejected or all."),
    ] = "pending",
    reviewer: Annotated[
        str | None, typer.Option("--reviewer", help="Who approves (default: $USER, git config).")
    ] = None,
    model: Annotated[
        str | None, typer.Option("--model", help="LLM model (for regenerate).")
    ] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="Endpoint URL (for regenerate).")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Review DECK's pending proposals: interactively, or with --approve / --reject / --list."""
    from grader.errors import GraderError, UsageError
    from grader.render import print_json
    from grader.review import approve as approve_ids
    from grader.review import list_proposals, reviewer_name
    from grader.review import reject as reject_ids

    chosen = [flag for flag, on in (("--approve", approve), ("--reject", reject)) if on]
    if list_only:
        chosen.append("--list")
    if len(chosen) > 1:
        raise UsageError(f"use one of --approve, --reject, --list (got {', '.join(chosen)})")
    if ids and not (approve or reject):
        raise UsageError("proposal ids need --approve or --reject")
    if (approve or reject) and not ids:
        raise UsageError(f"{chosen[0]} needs at least one proposal id")
    if reason is not None and not reject:
        raise UsageError("--reason goes with --reject")
    if status not in ("pending", "approved", "rejected", "all"):
        raise UsageError(f"--status: expected pending, approved, rejected or all, got {status!r}")

    if list_only:
        store = list_proposals(deck, None if status == "all" else status)
        if json_output:
            print_json("review list", store)
        else:
            _print_list(store.proposals, deck, status)
        return
    who = reviewer_name(reviewer)
    if approve or reject:
        outcomes = (
            approve_ids(deck, ids or [], who)
            if approve
            else reject_ids(deck, ids or [], who, reason=reason)
        )
        if json_output:
            print_json("review", {"deck": deck.as_posix(), "outcomes": outcomes})
        else:
            _print_outcomes(outcomes)
        other_way = "already-rejected" if approve else "already-approved"
        refused = [o.proposal_id for o in outcomes if o.action == other_way]
        if refused:  # approving again is a no-op; approving what was rejected is not done
            raise GraderError(
                f"not {'approved' if approve else 'rejected'}, decided the other way earlier: "
                + ", ".join(refused)
            )
        return
    if json_output:
        raise UsageError("interactive review has no --json; use --list, --approve or --reject")
    InteractiveReview(deck, who, lambda: _settings(model, base_url, None, False)).run()


def _print_list(proposals: list[CardProposal], deck: Path, status: str) -> None:
    from rich.table import Table
    from rich.text import Text

    out = _console()
    if not proposals:
        which = "" if status == "all" else f"{status} "
        out.print(Text(f"no {which}proposals for {deck}"))
        return
    table = Table("id", "status", "strategy", "question", "checks", box=None, pad_edge=False)
    for p in proposals:
        flags = "; ".join(c.reason for c in p.checks if c.outcome != "pass")
        table.add_row(
            Text(p.id),
            Text(p.status),
            Text(p.strategy),
            Text(_one_line(p.question, 70)),
            Text(flags),
        )
    out.print(table)


def _print_outcomes(outcomes: list[ReviewOutcome]) -> None:
    from rich.text import Text

    out = _console()
    for o in outcomes:
        detail = {
            "approved": f"approved as card {o.card_id}",
            "rejected": "rejected",
            "already-approved": f"already approved (card {o.card_id}, by {o.by}); not added again",
            "already-rejected": f"already rejected by {o.by}; unchanged",
            "edited": "edited",
            "added": "added",
        }[o.action]
        out.print(Text(f"{o.proposal_id}: {detail}"))


class InteractiveReview:
    """Walks pending proposals one at a time; every decision is written at once (under the lock)."""

    PROMPT = "[a]pprove  [e]dit  [r]eject  [g]regenerate  [s]kip  [q]uit > "

    def __init__(self, deck: Path, reviewer: str, settings: Callable[[], Settings]) -> None:
        self.deck = deck
        self.reviewer = reviewer
        self.load_settings = settings
        self.out = _console()
        self._checker: tuple[Encoder, CheckLimits] | None = None
        self.counts = {"approved": 0, "rejected": 0, "edited": 0, "skipped": 0, "regenerated": 0}

    def ask(self, prompt: str) -> str | None:
        try:
            return input(prompt)
        except EOFError:
            return None

    def checker(self) -> tuple[Encoder, CheckLimits]:
        if self._checker is None:
            from grader.expand.similarity import load_encoder
            from grader.render import notice

            self._checker = load_encoder(notice)
        return self._checker

    def run(self) -> None:
        from rich.text import Text

        from grader.review import list_proposals

        queue = [p.id for p in list_proposals(self.deck, "pending").proposals]
        if not queue:
            self.out.print(Text(f"no pending proposals for {self.deck}"))
            return
        total = len(queue)
        position = 0
        while queue:
            proposal_id = queue.pop(0)
            position += 1
            current = list_proposals(self.deck).get(proposal_id)
            if current is None or current.status != "pending":
                continue  # decided by someone else meanwhile
            follow_up = self.decide(current, position, total)
            if follow_up == "quit":
                break
            if follow_up is not None:
                queue.insert(0, follow_up)
                position -= 1
        summary = ", ".join(f"{k} {v}" for k, v in self.counts.items() if v)
        self.out.print(Text(f"review done: {summary or 'nothing decided'}"))

    def show(self, proposal: CardProposal, position: int, total: int) -> None:
        from rich.text import Text

        from grader.cli.grade_view import deck_text

        out = self.out
        out.rule(Text(f"proposal {proposal.id} ({position}/{total}) · {proposal.strategy}"))
        out.print(Text("Question", style="bold cyan"))
        out.print(deck_text(proposal.question))
        out.print(Text("Answer", style="bold cyan"))
        out.print(deck_text(proposal.answer))
        if proposal.footnote:
            out.print(Text("Footnote", style="bold cyan"))
            out.print(deck_text(proposal.footnote))
        details = []
        if proposal.tags:
            details.append("tags: " + ", ".join(proposal.tags))
        if proposal.builds_on:
            details.append("builds on: " + ", ".join(proposal.builds_on))
        if proposal.rationale:
            details.append("why: " + proposal.rationale)
        for line in details:
            out.print(Text(line))
        for check in proposal.checks:
            if check.outcome != "pass":
                out.print(Text(f"{check.outcome} ({check.name}): {check.reason}", style="yellow"))

    def decide(self, proposal: CardProposal, position: int, total: int) -> str | None:
        """Handle one proposal; returns "quit", a proposal id to show next, or None."""
        from rich.text import Text

        from grader.errors import GraderError
        from grader.review import approve, reject

        self.show(proposal, position, total)
        while True:
            answer = self.ask(self.PROMPT)
            if answer is None:
                return "quit"
            choice = answer.strip().lower()[:1]
            try:
                if choice == "a":
                    outcome = approve(self.deck, [proposal.id], self.reviewer)[0]
                    self._report(outcome)
                    return None
                if choice == "r":
                    why = self.ask("reason (optional) > ")
                    outcome = reject(self.deck, [proposal.id], self.reviewer, reason=why or None)[0]
                    self._report(outcome)
                    return None
                if choice == "e":
                    edited = self.edit(proposal)
                    if edited is not None:
                        return edited
                    continue
                if choice == "g":
                    replacement = self.regenerate(proposal)
                    if replacement is not None:
                        return replacement
                    continue
                if choice == "s":
                    self.counts["skipped"] += 1
                    return None
                if choice == "q":
                    return "quit"
            except GraderError as exc:
                self.out.print(Text(f"error: {exc}", style="red"))
                continue
            self.out.print(Text("choose a, e, r, g, s or q"))

    def _report(self, outcome: ReviewOutcome) -> None:
        from rich.text import Text

        if outcome.action in ("approved", "rejected"):
            self.counts[outcome.action] += 1
        messages = {
            "approved": f"approved as card {outcome.card_id}",
            "rejected": "rejected",
        }
        text = messages.get(outcome.action, f"{outcome.action} by {outcome.by}: {outcome.message}")
        self.out.print(Text(f"{outcome.proposal_id}: {text}", style="green"))

    def edit(self, proposal: CardProposal) -> str | None:
        """Open the proposal in $EDITOR, re-check and store it; returns its id to show again."""
        import click
        from rich.text import Text

        from grader.errors import GraderError
        from grader.review import editable_text, parse_edit, recheck, save_edit

        try:
            text = click.edit(editable_text(proposal), extension=".yaml", require_save=True)
        except click.ClickException as exc:  # no such editor, or it exited non-zero
            raise GraderError(
                f"{exc.format_message()}; set $VISUAL or $EDITOR to an editor that exits 0 on save"
            ) from None
        except UnicodeDecodeError:
            raise GraderError("the edited text is not UTF-8; edit not saved") from None
        if text is None:
            self.out.print(Text("unchanged"))
            return None
        fields = parse_edit(text, origin=f"edit of {proposal.id}")
        if fields is None:
            self.out.print(Text("edit cancelled"))
            return None
        encoder, limits = self.checker()
        updated = recheck(
            self.deck, proposal.model_copy(update=fields.model_dump()), encoder, limits
        )
        outcome = save_edit(self.deck, updated)
        if outcome.action != "edited":
            self._report(outcome)
            return None
        self.counts["edited"] += 1
        self.out.print(Text("edited and re-checked:", style="green"))
        return proposal.id

    def regenerate(self, proposal: CardProposal) -> str | None:
        """Ask the LLM for a replacement guided by feedback; returns the new proposal's id."""
        from rich.text import Text

        from grader.errors import ConfigError
        from grader.expand.checks import outcome
        from grader.review import recheck, replace_with

        settings = self.load_settings()
        if not settings.endpoint_configured:
            raise ConfigError(
                "regenerate needs an LLM endpoint (set OPENAI_BASE_URL or OPENAI_API_KEY)"
            )
        feedback = self.ask("feedback for the model > ")
        if not feedback or not feedback.strip():
            self.out.print(Text("no feedback given; not regenerated"))
            return None
        from grader.expand.llm import regenerate
        from grader.paths import grader_home

        encoder, limits = self.checker()
        new = regenerate(self.deck, proposal, feedback.strip(), settings, grader_home())
        checked = recheck(self.deck, new, encoder, limits)
        if outcome(checked) == "reject":
            reasons = "; ".join(c.reason for c in checked.checks if c.outcome == "reject")
            self.out.print(Text(f"the regenerated card failed the checks: {reasons}", style="red"))
            return None
        results = replace_with(self.deck, proposal.id, checked, self.reviewer, feedback.strip())
        if results[0].action != "rejected":
            self._report(results[0])
            return None
        self.counts["regenerated"] += 1
        return checked.id
