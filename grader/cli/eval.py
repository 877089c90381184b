"""`grader eval DATASET...`, `grader eval --resume RUN`, `grader eval compare RUN_A RUN_B`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer._click.core import Context
from typer.core import TyperGroup

if TYPE_CHECKING:
    from rich.table import Table

    from grader.evaluation.compare import Comparison
    from grader.evaluation.scoring import SliceMetrics
    from grader.evaluation.session import EvalOutcome


class _DefaultRunGroup(TyperGroup):
    """`grader eval FILE...` means `grader eval run FILE...`; named subcommands still work."""

    def parse_args(self, ctx: Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_DefaultRunGroup,
    no_args_is_help=True,
    help=(
        "Measure a grader against human grades: `grader eval DATASET.jsonl...` runs an eval "
        "(the `run` command: its options are in `grader eval run --help`), "
        "`grader eval compare A B` compares two runs."
    ),
)

GRADER_HELP = "auto (LLM when an endpoint is configured, else offline), offline or llm."


@app.command("run")
def run_command(
    datasets: Annotated[
        list[Path] | None,
        typer.Argument(help="JSONL files of responses with human grades.", show_default=False),
    ] = None,
    grader: Annotated[str, typer.Option("--grader", "-g", help=GRADER_HELP)] = "auto",
    model: Annotated[str | None, typer.Option("--model", "-m", help="LLM model name.")] = None,
    base_url: Annotated[
        str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint URL.")
    ] = None,
    max_connections: Annotated[
        int | None,
        typer.Option("--max-connections", "-c", min=1, max=256, help="Concurrent requests."),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            max=64,
            help="LLM grading processes sharing the connections (default: by connections, cores).",
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help="Grade only the first N responses.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON envelope.")] = False,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="Write predictions JSONL here ('-': stdout)."),
    ] = None,
    report_dir: Annotated[
        Path | None,
        typer.Option("--report-dir", help="Write report.md and charts here (default: run dir)."),
    ] = None,
    run_dir: Annotated[
        Path | None,
        typer.Option("--run-dir", help="Run directory (default: $GRADER_HOME/runs/<id>)."),
    ] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Resume run RUN (id or directory).")
    ] = None,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Bypass the LLM request cache.")
    ] = False,
    fail_under: Annotated[
        list[str] | None,
        typer.Option(
            "--fail-under",
            help=(
                "METRIC=VALUE; exit 3 when unmet (mae, false_accept_rate: when above). Also "
                "unmet when a response is ungraded, unless graded=SHARE is given."
            ),
        ),
    ] = None,
    record: Annotated[
        Path | None, typer.Option("--record", help="Record the run's HTTP exchanges here.")
    ] = None,
    replay: Annotated[
        Path | None, typer.Option("--replay", help="Re-run offline from a recorded cassette.")
    ] = None,
    batch: Annotated[
        bool, typer.Option("--batch", help="Submit through the OpenAI Batch API.")
    ] = False,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", min=0.0, help="Seconds between batch polls.")
    ] = 10.0,
    strict: Annotated[
        bool, typer.Option("--strict", help="Fail on the first bad dataset line.")
    ] = False,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for the 95% CIs.")
    ] = 1000,
    no_report: Annotated[
        bool, typer.Option("--no-report", help="Skip report.md and the charts.")
    ] = False,
) -> None:
    """Grade every response in DATASET... and report agreement with the human grades."""
    from grader.errors import GraderError, UsageError
    from grader.evaluation import scoring
    from grader.evaluation.session import EvalRequest, run_eval
    from grader.exitcodes import ExitCode
    from grader.render import notice, print_json

    if grader not in ("auto", "offline", "llm"):
        raise UsageError(f"--grader must be auto, offline or llm, not {grader!r}")
    if record is not None and replay is not None:
        raise UsageError("--record and --replay cannot be combined")
    if not datasets and resume is None:
        raise UsageError("give at least one DATASET (or --resume RUN)")
    if datasets and resume is not None:
        raise UsageError("--resume takes the datasets from the run; give no DATASET")
    if out is not None and str(out) == "-":
        out = Path("/dev/stdout")
    out_to_stdout = out is not None and _is_stdout(out)
    if out_to_stdout and json_output:
        raise UsageError("--out writes the predictions to stdout, where --json goes: choose one")
    thresholds = []
    for text in fail_under or []:
        try:
            thresholds.append(scoring.parse_threshold(text))
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    request = EvalRequest(
        datasets=list(datasets or []),
        grader=grader,
        model=model,
        base_url=base_url,
        max_connections=max_connections,
        workers=workers,
        limit=limit,
        cache=not no_cache,
        strict=strict,
        batch=batch,
        record=record,
        replay=replay,
        run_dir=run_dir,
        resume=resume,
        bootstrap=bootstrap,
        poll_seconds=poll_interval,
        report_dir=None if no_report else report_dir,
        report=not no_report,
        out=out,
    )
    with _progress_bar() as on_progress:
        outcome = run_eval(request, notice=notice, progress=on_progress)
    failures = scoring.failed_thresholds(outcome.summary, thresholds)
    if json_output:
        data: dict[str, Any] = outcome.model_dump(mode="json")
        data["thresholds"] = {
            "checked": [f"{n}={v}" for n, v in scoring.gates(thresholds)],
            "failed": failures,
        }
        print_json("eval", data)
    else:  # with the predictions on stdout, the summary goes to stderr
        _print_outcome(outcome, to_stderr=out_to_stdout)
    _say_why_ungraded(outcome, notice)
    overall = outcome.summary.overall
    if overall.n and not overall.graded:
        raise GraderError(
            f"none of the {overall.n} responses could be graded (reasons above); fix the cause "
            f"and continue with: grader eval --resume {outcome.run_id}"
        )
    for failure in failures:
        notice(f"threshold not met: {failure}")
    if failures:
        raise typer.Exit(ExitCode.BELOW_THRESHOLD)


def _is_stdout(path: Path) -> bool:
    """Whether writing `path` writes this process's standard output (`/dev/stdout`, or the file
    stdout is redirected to)."""
    import os

    try:
        target, stdout = os.stat(path), os.fstat(1)
    except OSError:
        return False
    return (target.st_dev, target.st_ino) == (stdout.st_dev, stdout.st_ino)


def _say_why_ungraded(outcome: EvalOutcome, notice: Callable[[str], None], shown: int = 3) -> None:
    """The most common reasons responses went ungraded, on stderr (they are in report.md too)."""
    reasons = list(outcome.ungraded_reasons.items())
    for reason, count in reasons[:shown]:
        notice(f"ungraded ({count}): {reason}")
    if len(reasons) > shown:
        notice(f"ungraded: {len(reasons) - shown} more reason(s), see the report")


@app.command("compare")
def compare_command(
    run_a: Annotated[str, typer.Argument(help="Baseline run (id or directory).")],
    run_b: Annotated[str, typer.Argument(help="Candidate run (id or directory).")],
    json_output: Annotated[bool, typer.Option("--json", help="Print a JSON envelope.")] = False,
    bootstrap: Annotated[
        int, typer.Option("--bootstrap", min=0, help="Bootstrap resamples for the 95% CIs.")
    ] = 1000,
    show: Annotated[int, typer.Option("--show", min=0, help="Changed responses to list.")] = 20,
) -> None:
    """Metric deltas (B - A) with paired bootstrap CIs, and the responses whose grades changed."""
    from grader.evaluation.compare import compare_runs
    from grader.paths import grader_home
    from grader.render import print_json

    comparison = compare_runs(grader_home(), run_a, run_b, resamples=bootstrap)
    if json_output:
        print_json("eval compare", comparison)
        return
    _print_comparison(comparison, show)


# -- rendering ------------------------------------------------------------------------------


class _progress_bar:
    """A rich progress bar on stderr (only on a terminal): done/total, rate, ETA, tokens, cost.

    It starts (with its refresh thread) at the runner's first report, which comes after any
    grading workers have been forked: forking a process with threads risks the child inheriting
    a held lock."""

    def __enter__(self) -> Any:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("grading"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[cost]}"),
            console=console,
            disable=not console.is_terminal,
            transient=False,
        )
        self.task: Any = None
        return self.update

    def update(self, state: Any) -> None:
        import time

        from grader.evaluation.runner import estimate_cost

        if self.task is None:
            self.progress.start()
            self.started = time.monotonic()
            self.first_done = state.done
            self.task = self.progress.add_task(
                "grading", total=state.total, completed=state.done, rate="", cost=""
            )
        elapsed = max(time.monotonic() - self.started, 1e-6)
        rate = (state.done - self.first_done) / elapsed
        tokens = state.usage.total_tokens
        cost = estimate_cost(getattr(state, "model", None), state.usage)
        cost_text = f"{tokens:,} tok" + (f" ${cost:.4f}" if cost is not None else "")
        if state.ungraded:
            cost_text += f" {state.ungraded} ungraded"
        self.progress.update(self.task, completed=state.done, rate=f"{rate:.1f}/s", cost=cost_text)

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _slice_table(title: str, slices: dict[str, SliceMetrics], metrics: Sequence[str]) -> Table:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from grader.evaluation.report import with_interval

    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=0,
        title_justify="left",
    )
    table.add_column("slice", overflow="fold")
    for header in ("n", "ungraded", *metrics):  # numbers are never cut; a long slice name wraps
        table.add_column(header, no_wrap=True, min_width=len(header))
    intervals = any(sm.metric(m).low is not None for sm in slices.values() for m in metrics)
    for name, sm in slices.items():
        table.add_row(  # a slice name is data (a dataset, split or kind): never rich markup
            Text(name),
            str(sm.n),
            str(sm.ungraded),
            *(with_interval(sm.metric(m), between="\n") for m in metrics),
            end_section=intervals,  # a blank line: a wrapped name never reads as the next row
        )
    if intervals:
        table.caption = "under each value: its 95% CI, where the slice has one"
        table.caption_justify = "left"
    return table


def _print_outcome(outcome: EvalOutcome, *, to_stderr: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from grader.evaluation.scoring import CLASS_METRICS, METRICS, SCORE_METRICS

    console = Console(highlight=False, soft_wrap=True, stderr=to_stderr)
    summary = outcome.summary
    overall = summary.overall
    console.print(
        Text(
            f"run {outcome.run_id}: {overall.n} responses, {overall.graded} graded, "
            f"{overall.ungraded} ungraded ({outcome.spec.grader}"
            + (f", {outcome.spec.model}" if outcome.spec.model else "")
            + ")"
        )
    )
    table = Table("metric", "value", "95% CI", title="overall")
    for name in METRICS:
        interval = overall.metric(name)
        ci = "" if interval.low is None else f"[{_fmt(interval.low)}, {_fmt(interval.high)}]"
        table.add_row(name, _fmt(interval.value), Text(ci))
    console.print(table)
    for title, slices in (
        ("per dataset", summary.by_dataset),
        ("per split", summary.by_split),
        ("per kind", summary.by_kind),
    ):
        if not slices:
            continue
        console.print()
        whole = _slice_table(title, slices, METRICS)
        unbounded = console.options.update(max_width=10 * console.width)
        if console.measure(whole, options=unbounded).maximum <= console.width:
            console.print(whole)
        else:  # a narrow terminal or a log (80 columns) would cut every number to "0.8…"
            console.print(_slice_table(f"{title}: scores", slices, SCORE_METRICS))
            console.print(_slice_table(f"{title}: verdicts", slices, CLASS_METRICS))
    console.print(Text(f"run directory: {outcome.run_dir}"))
    if outcome.report is not None:
        console.print(Text(f"report: {outcome.report}"))
    if outcome.predictions is not None:
        console.print(Text(f"predictions: {outcome.predictions}"))


def _print_comparison(comparison: Comparison, show: int) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False, soft_wrap=True)
    console.print(  # run ids, directories and response keys are data: Text, never markup/emoji
        Text(
            f"A = {comparison.run_a} ({comparison.grader_a}), B = {comparison.run_b} "
            f"({comparison.grader_b}); {comparison.common} responses in common"
        )
    )
    if comparison.graded_both != comparison.common:
        console.print(
            f"metrics over the {comparison.graded_both} both runs graded "
            f"(ungraded: {comparison.ungraded_a} in A, {comparison.ungraded_b} in B)"
        )
    table = Table("metric", "A", "B", "B - A", "95% CI of B - A")
    for delta in comparison.deltas:
        ci = "" if delta.low is None else f"[{_fmt(delta.low)}, {_fmt(delta.high)}]"
        table.add_row(Text(delta.metric), _fmt(delta.a), _fmt(delta.b), _fmt(delta.delta), Text(ci))
    console.print(table)
    console.print(f"{len(comparison.changed)} responses changed verdict or moved >= 0.25")
    for change in comparison.changed[:show]:
        console.print(
            Text(
                f"  {change.key}: {change.verdict_a} {_fmt(change.score_a)} -> "
                f"{change.verdict_b} {_fmt(change.score_b)} (human {_fmt(change.gold)})"
            )
        )
