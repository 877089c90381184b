"""One `grader eval` invocation end to end: load, pick the grader, grade into a run dir, score.

Returns an `EvalOutcome`; never prints (notices go through the `notice` callback).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from grader.atomic import WriteError, check_writable, write_text_atomic
from grader.errors import InputError, UsageError
from grader.evaluation import runner
from grader.evaluation.dataset import LoadedData, card_for, load_datasets
from grader.evaluation.runner import ProgressCallback, ResultRecord, RunSpec
from grader.evaluation.scoring import EvalSummary, summarise
from grader.evaluation.workers import WorkerPlan, auto_workers
from grader.settings import OPENAI_DEFAULT_BASE_URL

RECORDED_FILE = "recorded.json"
"""In a `--record` run's directory: the keys of the results whose exchanges the cassette holds."""


class EvalRequest(BaseModel):
    """What the user asked `grader eval` to do."""

    model_config = ConfigDict(extra="forbid")

    datasets: list[Path] = Field(default_factory=list)
    grader: str = "auto"
    model: str | None = None
    base_url: str | None = None
    max_connections: int | None = None
    workers: int | None = None
    """LLM grading processes; None picks by connection limit, cores and run size."""
    limit: int | None = None
    cache: bool = True
    strict: bool = False
    batch: bool = False
    record: Path | None = None
    replay: Path | None = None
    run_dir: Path | None = None
    resume: str | None = None
    bootstrap: int = 1000
    poll_seconds: float = 10.0
    """Seconds between Batch API status polls."""
    report: bool = True
    report_dir: Path | None = None
    out: Path | None = None


class EvalOutcome(BaseModel):
    """The result of a run: where it lives, what it was, and its metrics."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    run_dir: str
    spec: RunSpec
    summary: EvalSummary
    problems: list[str] = Field(default_factory=list)
    """Dataset lines skipped, as `file:line: message`."""
    graded_now: int = 0
    """Responses graded by this invocation (0 for a complete resumed run)."""
    report: str | None = None
    predictions: str | None = None
    ungraded_reasons: dict[str, int] = Field(default_factory=dict)
    """Why responses went ungraded: each distinct reason and how many, most common first."""


def _home() -> Path:
    from grader.paths import grader_home

    return grader_home()


@contextlib.contextmanager
def _cassette(spec: RunSpec, secret: str | None) -> Iterator[None]:
    if spec.cassette is None:
        yield
        return
    from grader.evaluation.cassette import use_cassette

    with use_cassette(Path(spec.cassette), record=spec.cassette_mode == "record", secret=secret):
        yield


def _settings(request: EvalRequest, home: Path, spec: RunSpec | None) -> Any:
    from grader.settings import resolve_settings

    overrides: dict[str, Any] = {
        "model": request.model,
        "base_url": request.base_url,
        "max_connections": request.max_connections,
    }
    if spec is not None:  # resuming: the run's own endpoint and model, unless overridden
        overrides["model"] = request.model or spec.model if spec.grader == "llm" else None
        overrides["base_url"] = request.base_url or spec.base_url
        overrides["max_connections"] = request.max_connections or spec.max_connections
        if spec.mode is not None:
            overrides["mode"] = spec.mode
    cassette_run = request.record is not None or request.replay is not None
    if spec is not None:
        cassette_run = cassette_run or spec.cassette is not None
    if not request.cache or cassette_run:
        # a cassette must hold (or replay) every exchange, so the request cache is bypassed
        overrides["cache"] = False
    replay = request.replay
    if replay is None and spec is not None and spec.cassette_mode == "replay" and spec.cassette:
        replay = Path(spec.cassette)
    if replay is not None and replay.is_file():
        from grader.evaluation.cassette import recorded_endpoint

        # a replay talks to the endpoint and model it recorded, so no key or URL is needed
        recorded_url, recorded_model = recorded_endpoint(replay)
        overrides["base_url"] = overrides["base_url"] or recorded_url
        overrides["model"] = overrides["model"] or recorded_model
    return resolve_settings(home, **overrides)


def _create_run_dir(chosen: Path | None, home: Path) -> Path:
    """The user's run directory, or a new one under GRADER_HOME/runs, created."""
    where = chosen or runner.runs_root(home)
    try:
        if chosen is None:
            return runner.create_run_dir(where)
        chosen.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"{where}: cannot create ({exc.strerror or exc})") from None
    return chosen


def _check_unused(run_dir: Path) -> None:
    if (run_dir / runner.SPEC_FILE).exists():
        raise InputError("already holds a run; use --resume to continue it", path=run_dir)
    if (run_dir / runner.RESULTS_FILE).exists():  # never adopt grades of unknown origin
        raise InputError(
            f"holds a {runner.RESULTS_FILE} but no run spec; give a new or empty directory",
            path=run_dir,
        )


def _reload(spec: RunSpec) -> LoadedData:
    paths = [Path(d.path) for d in spec.datasets]
    loaded = load_datasets(paths, strict=spec.strict, limit=spec.limit)
    for old, new in zip(spec.datasets, loaded.files, strict=True):
        if old.sha256 != new.sha256:
            raise InputError(
                "dataset changed since the run started (SHA-256 differs); start a new run",
                path=old.path,
            )
    return loaded


def run_eval(
    request: EvalRequest,
    *,
    notice: Callable[[str], None],
    progress: ProgressCallback | None = None,
    home: Path | None = None,
) -> EvalOutcome:
    from grader.graders import factory

    home = home or _home()
    if request.replay is not None and not request.replay.is_file():
        raise InputError("no such cassette", path=request.replay)
    if request.resume is not None:
        run_dir = runner.resolve_run(home, request.resume)
        spec = runner.read_spec(run_dir)
        loaded = _reload(spec)
        choice = spec.grader if spec.grader in ("offline", "llm") else "auto"
        settings = _settings(request, home, spec)
        if request.max_connections is not None:
            spec = spec.model_copy(update={"max_connections": request.max_connections})
    else:
        loaded = load_datasets(request.datasets, strict=request.strict, limit=request.limit)
        if not loaded.items:
            for problem in loaded.problems:
                notice(f"skipped {problem}")
            raise InputError(
                "no valid responses to grade in " + ", ".join(map(str, request.datasets))
            )
        choice = request.grader
        settings = _settings(request, home, None)
        run_dir = request.run_dir or runner.runs_root(home)  # a new run's is named later
        check_writable(run_dir, directory=True)
        if request.run_dir is not None:
            _check_unused(request.run_dir)
        spec = None
    if request.out is not None:
        check_writable(request.out)
    if request.report and request.report_dir is not None:
        check_writable(request.report_dir, directory=True)
    for problem in loaded.problems:
        notice(f"skipped {problem}")

    # Responses that name their deck (a `deck` field, as the seed evals do) are graded with that
    # deck's other cards as context, as in practice. A dataset without decks gets none: its
    # questions are no deck, and one question may come with several references.
    decked = [card_for(i.record) for i in loaded.items if (i.record.model_extra or {}).get("deck")]
    cards = list({card.id: card for card in decked}.values())
    grader = factory.make_grader(choice, settings, home, notice, context=cards)  # type: ignore[arg-type]
    kind = str(getattr(grader, "kind", "fake"))
    if request.batch and kind != "llm":
        raise InputError("--batch needs the LLM grader (--grader llm and an endpoint)")
    if (request.record or request.replay) and kind != "llm":
        raise UsageError(f"--record and --replay need the LLM grader; this run grades {kind}")
    if spec is not None:
        _check_same_grader(spec, kind, settings, _prompt_hash(grader))

    if spec is None:
        run_dir = _create_run_dir(request.run_dir, home)
        cassette = request.record or request.replay
        spec = runner.new_spec(
            run_dir.name,
            loaded.files,
            grader=kind,
            model=settings.model if kind == "llm" else None,
            base_url=settings.base_url if kind == "llm" else None,
            mode=settings.mode if kind == "llm" else None,
            prompt_hash=_prompt_hash(grader),
            max_connections=settings.max_connections,
            limit=request.limit,
            strict=request.strict,
            cache=settings.cache,
            batch=request.batch,
            cassette=str(cassette.resolve()) if cassette is not None else None,
            cassette_mode="record" if request.record else "replay" if request.replay else None,
        )
        if spec.cassette_mode == "record" and request.record is not None:
            request.record.unlink(missing_ok=True)
        runner.write_spec(run_dir, spec)

    if spec.cassette_mode == "record":
        _forget_unrecorded(run_dir, spec, loaded, notice)
    before = runner.read_results(run_dir)
    pending = len(runner.pending_items(loaded.items, before))
    try:
        plan = _worker_plan(request, spec, grader, settings, home, pending)
        results = _grade(request, spec, run_dir, grader, settings, loaded, progress, notice, plan)
    except KeyboardInterrupt:
        notice(f"results so far are in {run_dir}; continue with: grader eval --resume {run_dir}")
        raise
    finally:
        close = getattr(grader, "close", None)
        if callable(close):
            close()
    ordered = runner.ordered_results(loaded.items, results)
    spec = _fill_from_results(run_dir, spec, ordered)

    summary = summarise(ordered, resamples=request.bootstrap)
    runner.write_summary(run_dir, summary)
    report_path = None
    if request.report:
        from grader.evaluation.report import write_report

        report_dir = request.report_dir or run_dir
        try:
            report_path = write_report(report_dir, spec, summary, ordered, loaded.items)
        except OSError as exc:
            raise WriteError(
                f"{report_dir}: cannot write the report ({exc.strerror or exc})"
            ) from exc
    predictions = None
    if request.out is not None:
        runner.write_predictions(request.out, ordered)
        predictions = str(request.out)
    return EvalOutcome(
        run_id=spec.run_id,
        run_dir=str(run_dir),
        spec=spec,
        summary=summary,
        problems=loaded.problems,
        graded_now=pending,
        report=str(report_path) if report_path is not None else None,
        predictions=predictions,
        ungraded_reasons=_ungraded_reasons(ordered),
    )


def _ungraded_reasons(results: list[ResultRecord]) -> dict[str, int]:
    from collections import Counter

    reasons = Counter(
        r.grade.reason or "no reason given" for r in results if r.verdict == "ungraded"
    )
    return dict(reasons.most_common())


def _check_same_grader(spec: RunSpec, kind: str, settings: Any, prompt_hash: str | None) -> None:
    """A resumed run must grade with what graded its first part: one run's grades come from
    one grader, model, endpoint and prompt (or offline calibration), as its spec says.
    UsageError naming what changed."""
    now: dict[str, str | None] = {"grader": kind, "prompt": prompt_hash}
    then: dict[str, str | None] = {"grader": spec.grader, "prompt": spec.prompt_hash}
    if kind == "llm":
        now |= {
            "model": settings.model,
            "base URL": settings.effective_base_url,
            "mode": settings.mode,
        }
        then |= {
            "model": spec.model,
            "base URL": (spec.base_url or OPENAI_DEFAULT_BASE_URL).rstrip("/"),
            "mode": spec.mode,
        }
    for what, before in then.items():
        if before is not None and now[what] != before:
            raise UsageError(
                f"run {spec.run_id} was graded with {what} {before}, and would now go on with "
                f"{now[what]}: a run's grades come from one grader; start a new run for the new "
                "one (or undo the change to resume)"
            )


def _prompt_hash(grader: object) -> str | None:
    """The LLM grader's prompt hash, or the offline grader's calibration hash (which its grades
    record in the same field)."""
    template = getattr(grader, "template", None)
    value = getattr(template, "hash", None) or getattr(grader, "calibration_id", None)
    return value if isinstance(value, str) else None


def _fill_from_results(run_dir: Path, spec: RunSpec, results: list[ResultRecord]) -> RunSpec:
    """Record the model and prompt hash a grade reports, when the spec could not know them."""
    first = next((r.grade.evidence for r in results if r.grade.graded), None)
    if first is None:
        return spec
    update: dict[str, Any] = {}
    if spec.model is None and first.model is not None:
        update["model"] = first.model
    if spec.prompt_hash is None and first.prompt_hash is not None:
        update["prompt_hash"] = first.prompt_hash
    if not update:
        return spec
    spec = spec.model_copy(update=update)
    runner.write_spec(run_dir, spec)
    return spec


def _worker_plan(
    request: EvalRequest, spec: RunSpec, grader: object, settings: Any, home: Path, pending: int
) -> WorkerPlan | None:
    """Worker processes for a plain LLM run; None (in-process) for anything else.

    A cassette patches this process's HTTP stack only, and a batch run makes few requests."""
    if spec.grader != "llm" or spec.cassette is not None or spec.batch:
        return None  # before the import below: an offline run need not load the LLM modules
    from grader.graders.llm import LLMGrader

    if not isinstance(grader, LLMGrader):
        return None
    workers = request.workers or auto_workers(spec.max_connections, pending)
    if workers <= 1:
        return None
    return WorkerPlan(settings, home, workers)


def _grade(
    request: EvalRequest,
    spec: RunSpec,
    run_dir: Path,
    grader: object,
    settings: Any,
    loaded: LoadedData,
    progress: ProgressCallback | None,
    notice: Callable[[str], None],
    plan: WorkerPlan | None,
) -> dict[str, ResultRecord]:
    secret = settings.api_key.get_secret_value() if settings.api_key is not None else None
    try:
        with _cassette(spec, secret):
            if spec.batch:
                from grader.evaluation.batch import grade_with_batch

                return grade_with_batch(
                    run_dir,
                    grader,
                    settings,
                    loaded.items,
                    notice=notice,
                    progress=progress,
                    poll_seconds=request.poll_seconds,
                )
            return runner.grade_into(
                run_dir,
                grader,
                loaded.items,
                max_connections=spec.max_connections,
                progress=progress,
                model=spec.model,
                workers=plan,
            )
    finally:  # vcrpy saved the cassette on the way out, interrupted or not
        if spec.cassette_mode == "record":
            keys = sorted(runner.read_results(run_dir))
            write_text_atomic(run_dir / RECORDED_FILE, json.dumps({"keys": keys}) + "\n")


def _forget_unrecorded(
    run_dir: Path, spec: RunSpec, loaded: LoadedData, notice: Callable[[str], None]
) -> None:
    """Drop the results whose exchanges never reached the cassette, so they are graded again.

    vcrpy writes a cassette when its context ends, which Ctrl-C and errors reach but `kill -9`
    does not: the grades of a killed recording have no exchange to replay. `RECORDED_FILE`
    lists the results graded before the cassette was last saved."""
    cassette = Path(spec.cassette) if spec.cassette else None
    recorded: set[str] = set()
    if cassette is not None and cassette.is_file():
        with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
            recorded = set(json.loads((run_dir / RECORDED_FILE).read_text("utf-8"))["keys"])
    lost = set(runner.read_results(run_dir)) - recorded
    if lost:
        notice(
            f"{len(lost)} responses were graded after the cassette was last saved (the run was "
            "killed, or the cassette is gone); grading them again so that the recording holds "
            "every exchange"
        )
        runner.compact_results(run_dir, [item.key for item in loaded.items], drop=lost)
