"""Eval runs: grade every response concurrently, appending results to a run directory as they land.

A run directory holds `spec.json` (what was run: grader, model, endpoint, prompt hash, package
versions, git revision, dataset hashes) and `results.jsonl` (one line per graded response, appended
and flushed as each grade arrives, fsynced per batch). A killed run loses at most its in-flight
items; `resume` grades only what is missing (and what came back ungraded).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import secrets
import subprocess
from collections.abc import Callable, Iterator, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grader import asyncrun
from grader.atomic import write_text_atomic
from grader.errors import InputError, NotFoundError, first_error
from grader.evaluation.dataset import DatasetFile, EvalItem, card_for
from grader.evaluation.workers import WorkerPlan, grade_in_workers, started_workers
from grader.graders.base import calls_at_once
from grader.models import Card, Grade, GradeEvidence, Usage, utc_now_iso

SPEC_FILE = "spec.json"
RESULTS_FILE = "results.jsonl"
SPEC_VERSION = 1
FSYNC_EVERY = 32
"""Results are flushed per line (safe against kill -9) and fsynced every this many lines."""
OFFLINE_CHUNK = 256
"""Responses handed to a grader without `agrade` per `grade_many` call: enough tokens for the
offline encoder to run a batch on each core (32 kept one core idle: 226 against 264 responses/s
on scientsbank, means of 5 runs), about a second of work, so results still land every second."""

PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
}
"""USD per million prompt / completion tokens, for the running cost estimate (list prices)."""


class RunSpec(BaseModel):
    """What a run graded and with what: enough to reproduce it and to resume it."""

    model_config = ConfigDict(extra="forbid")

    version: int = SPEC_VERSION
    run_id: str
    created_at: str
    grader: str
    """The grader kind that ran (`offline`, `llm`, or a test fake)."""
    model: str | None = None
    base_url: str | None = None
    mode: str | None = None
    """instructor mode, for LLM runs."""
    prompt_hash: str | None = None
    max_connections: int = 1
    limit: int | None = None
    strict: bool = False
    cache: bool = True
    batch: bool = False
    cassette: str | None = None
    cassette_mode: str | None = None
    """`record` or `replay` when the run went through a vcrpy cassette."""
    datasets: list[DatasetFile] = Field(default_factory=list)
    package_versions: dict[str, str] = Field(default_factory=dict)
    git_revision: str | None = None
    code_hash: str | None = None
    """SHA-256 prefix of the grader package's own files: tells apart two runs of one `-dirty`
    revision whose code differs."""


class ResultRecord(BaseModel):
    """One graded response as stored in `results.jsonl` (and written by `--out`)."""

    model_config = ConfigDict(extra="forbid")

    key: str
    """`<dataset>:<line>`, unique within the run."""
    id: str | int
    """The input line's `id` (a string or an integer, as given), or its line number."""
    dataset: str
    line: int
    gold: float
    """Human score normalised to [0, 1]."""
    label: str | None = None
    split: str | None = None
    kind: str | None = None
    predicted_score: float | None
    """The grader's score in [0, 1]; null when ungraded."""
    verdict: str
    grade: Grade


def result_for(item: EvalItem, grade: Grade) -> ResultRecord:
    record = item.record
    return ResultRecord(
        key=item.key,
        id=item.display_id,
        dataset=item.dataset,
        line=item.line,
        gold=record.gold,
        label=record.label,
        split=record.split,
        kind=record.kind,
        predicted_score=grade.score,
        verdict=grade.verdict,
        grade=grade,
    )


class AsyncGrader(Protocol):
    async def agrade(self, card: Card, answer: str) -> Grade: ...


class BatchGrader(Protocol):
    def grade_many(self, items: Sequence[tuple[Card, str]]) -> list[Grade]: ...


@dataclass
class Progress:
    """Counters passed to the progress callback after every result."""

    done: int
    total: int
    ungraded: int
    usage: Usage
    cached: int
    model: str | None = None
    """Model name, for the running cost estimate."""


ProgressCallback = Callable[[Progress], None]


# -- run directory --------------------------------------------------------------------------


def new_run_id(now: datetime | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(2)}"


def create_run_dir(root: Path) -> Path:
    """A new, empty run directory under `root`. Made exclusively: a run started in the same
    second that drew the same suffix has taken the name first, and this one draws again."""
    root.mkdir(parents=True, exist_ok=True)
    while True:
        run_dir = root / new_run_id()
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue
        return run_dir


def runs_root(home: Path) -> Path:
    return home / "runs"


def resolve_run(home: Path, run: str) -> Path:
    """A run given as a directory path or as a run id under GRADER_HOME/runs."""
    for candidate in (Path(run), runs_root(home) / run):
        if (candidate / SPEC_FILE).is_file():
            return candidate
    raise NotFoundError(
        f"no eval run {run!r} (looked for {run}/{SPEC_FILE} and in {runs_root(home)})"
    )


def read_spec(run_dir: Path) -> RunSpec:
    path = run_dir / SPEC_FILE
    try:
        return RunSpec.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NotFoundError(f"{path}: no such run spec") from None
    except ValidationError as exc:
        field, message = first_error(exc, "spec")
        raise InputError(f"invalid run spec: field {field!r}: {message}", path=path) from None


def write_spec(run_dir: Path, spec: RunSpec) -> None:
    write_text_atomic(run_dir / SPEC_FILE, spec.model_dump_json(indent=2) + "\n")


def read_results(run_dir: Path) -> dict[str, ResultRecord]:
    """Stored results by key; the last line for a key wins; a torn final line is ignored."""
    path = run_dir / RESULTS_FILE
    results: dict[str, ResultRecord] = {}
    if not path.is_file():
        return results
    with path.open(encoding="utf-8") as handle:
        for text in handle:
            if not text.endswith("\n"):
                break  # torn write from a killed process: that item is graded again
            if not text.strip():
                continue
            try:
                result = ResultRecord.model_validate_json(text)
            except ValidationError:
                continue
            results[result.key] = result
    return results


def compact_results(
    run_dir: Path,
    order: Sequence[str],
    drop: Set[str] = frozenset(),
    *,
    held: dict[str, ResultRecord] | None = None,
) -> None:
    """Rewrite results.jsonl atomically: one line per key, in input order, without `drop`.
    `held`: the file's results as `read_results` would return them, already in memory (reading
    and validating 1,000 again took 8 ms at the end of every run)."""
    stored = read_results(run_dir) if held is None else held
    results = {k: v for k, v in stored.items() if k not in drop}
    keys = [k for k in order if k in results] + sorted(set(results) - set(order))
    text = "".join(results[k].model_dump_json() + "\n" for k in keys)
    write_text_atomic(run_dir / RESULTS_FILE, text)


class ResultsWriter:
    """Appends result lines; flush per line, fsync per FSYNC_EVERY lines and on close."""

    def __init__(self, path: Path, fsync_every: int = FSYNC_EVERY) -> None:
        self.path = path
        self.fsync_every = fsync_every
        self._pending = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_torn_tail()
        self._handle = path.open("a", encoding="utf-8")

    def _drop_torn_tail(self) -> None:
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.path.open("r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)

    def write(self, result: ResultRecord) -> None:
        self._handle.write(result.model_dump_json() + "\n")
        self._handle.flush()
        self._pending += 1
        if self._pending >= self.fsync_every:
            self.sync()

    def sync(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._pending = 0

    def close(self) -> None:
        if not self._handle.closed:
            self.sync()
            self._handle.close()

    def __enter__(self) -> ResultsWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# -- spec facts -----------------------------------------------------------------------------


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions: dict[str, str] = {}
    for name in ("grader", "openai", "instructor", "pydantic", "numpy", "tokenizers"):
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def git_revision(directory: Path | None = None) -> str | None:
    """The checkout's HEAD commit (with `-dirty` when it has changes), or None outside git."""
    where = directory or Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def code_hash(package: Path | None = None) -> str:
    """SHA-256 prefix over the package's source and data files (paths and contents, sorted)."""
    import hashlib

    root = package or Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def estimate_cost(model: str | None, usage: Usage, *, batch: bool = False) -> float | None:
    """USD for `usage` at list price (half for the Batch API); None for unknown models."""
    if model is None or model not in PRICES_PER_MTOK:
        return None
    price_in, price_out = PRICES_PER_MTOK[model]
    cost = (usage.prompt_tokens * price_in + usage.completion_tokens * price_out) / 1_000_000
    return cost / 2 if batch else cost


def new_spec(run_id: str, datasets: list[DatasetFile], **fields: Any) -> RunSpec:
    return RunSpec(
        run_id=run_id,
        created_at=utc_now_iso(),
        datasets=datasets,
        package_versions=package_versions(),
        git_revision=git_revision(),
        code_hash=code_hash(),
        **fields,
    )


# -- grading --------------------------------------------------------------------------------


def _failure(grader: object, exc: BaseException) -> Grade:
    kind = getattr(grader, "kind", "fake")
    evidence = GradeEvidence(grader=kind if kind in ("offline", "llm") else "fake")
    text = " ".join(str(exc).split()) or type(exc).__name__
    return Grade.ungraded(f"grader failed: {text[:300]}", evidence)


def pending_items(items: Sequence[EvalItem], done: dict[str, ResultRecord]) -> list[EvalItem]:
    """Items without a stored result, plus those stored as ungraded (retried on resume)."""
    return [i for i in items if i.key not in done or done[i.key].verdict == "ungraded"]


async def _grade_async(
    grader: AsyncGrader,
    items: Sequence[EvalItem],
    max_connections: int,
    on_grade: Callable[[EvalItem, Grade], None],
) -> None:
    queue: asyncio.Queue[EvalItem] = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)

    async def worker() -> None:
        while True:
            try:
                item = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                grade = await grader.agrade(card_for(item.record), item.record.student_answer)
            except Exception as exc:  # a grader failure is `ungraded`, never fatal
                grade = _failure(grader, exc)
            on_grade(item, grade)

    at_once = calls_at_once(grader, max_connections)
    workers = [asyncio.create_task(worker()) for _ in range(max(1, min(at_once, len(items))))]
    try:
        await asyncio.gather(*workers)
    finally:
        for task in workers:
            task.cancel()
        close = getattr(grader, "aclose", None)
        if callable(close):
            await close()


async def _grade_chunks(
    grader: BatchGrader,
    items: Sequence[EvalItem],
    chunk: int,
    on_grade: Callable[[EvalItem, Grade], None],
) -> None:
    for start in range(0, len(items), chunk):
        part = items[start : start + chunk]
        pairs = [(card_for(i.record), i.record.student_answer) for i in part]
        try:
            grades = await asyncio.to_thread(grader.grade_many, pairs)
        except Exception as exc:  # a grader failure is `ungraded`, never fatal
            grades = [_failure(grader, exc) for _ in part]
        for item, grade in zip(part, grades, strict=True):
            on_grade(item, grade)


@contextlib.contextmanager
def _heap_frozen() -> Iterator[None]:
    """Leave the objects alive when a run starts out of garbage collection until it ends.

    They are mostly the libraries' (openai's and pydantic's classes and schemas): 120,000
    objects once openai and instructor are loaded, which a full collection took 70-120 ms to
    scan, longer than a request's round trip to a fast endpoint. One that fell just before the
    workers were forked delayed every first request by that much (the benchmark's first grade
    at N = 32 came at 0.24-0.28 s instead of 0.14-0.15), and one during a run stalls the loop
    that relays grades. Forked workers inherit them frozen, as the `gc` documentation advises
    before a fork. Unfrozen afterwards, so that garbage among them is collected again. A heap
    already frozen (by the caller, or by a run in another thread) is left as it is, and left
    frozen."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def grade_into(
    run_dir: Path,
    grader: object,
    items: Sequence[EvalItem],
    *,
    max_connections: int,
    progress: ProgressCallback | None = None,
    chunk: int = OFFLINE_CHUNK,
    model: str | None = None,
    workers: WorkerPlan | None = None,
) -> dict[str, ResultRecord]:
    """Grade the items still missing from `run_dir`, appending each result; return all results.

    With a `workers` plan of more than one process, the plan's LLM grader runs in those
    processes (sharing `max_connections`) and `grader` is not called. Otherwise graders with
    `agrade` run on concurrent tasks, `max_connections` of them (a few more for a grader that keeps
    to the limit itself: `calls_at_once`); others go through `grade_many` in chunks
    on a worker thread (so progress keeps moving). `progress` hears once before grading starts,
    then after every result.
    """
    done = read_results(run_dir)
    todo = pending_items(items, done)
    total = len(items)
    state = Progress(
        done=total - len(todo), total=total, ungraded=0, usage=Usage(), cached=0, model=model
    )

    with _heap_frozen(), ResultsWriter(run_dir / RESULTS_FILE) as writer:

        def report() -> None:
            if progress is not None:
                progress(state)

        def on_grade(item: EvalItem, grade: Grade) -> None:
            result = result_for(item, grade)
            writer.write(result)
            done[item.key] = result
            state.done += 1
            state.ungraded += 0 if grade.graded else 1
            state.usage = state.usage + grade.evidence.usage
            state.cached += 1 if grade.evidence.cached else 0
            report()

        if todo and workers is not None and workers.workers > 1:
            with started_workers(workers, max_connections) as started:
                report()  # only now: a progress display may start a thread, never before a fork
                asyncrun.run(grade_in_workers(started, workers.settings, todo, on_grade))
        elif todo:
            if callable(getattr(grader, "agrade", None)):
                coro = _grade_async(cast(AsyncGrader, grader), todo, max_connections, on_grade)
            elif hasattr(grader, "grade_many"):
                coro = _grade_chunks(cast(BatchGrader, grader), todo, chunk, on_grade)
            else:
                raise TypeError(f"{type(grader).__name__} can neither agrade nor grade_many")
            report()
            asyncrun.run(coro)
    compact_results(run_dir, [i.key for i in items], held=done)
    return done


def ordered_results(
    items: Sequence[EvalItem], results: dict[str, ResultRecord]
) -> list[ResultRecord]:
    return [results[i.key] for i in items if i.key in results]


SUMMARY_FILE = "summary.json"


def write_summary(run_dir: Path, summary: BaseModel) -> None:
    write_text_atomic(run_dir / SUMMARY_FILE, summary.model_dump_json(indent=2) + "\n")


def write_predictions(path: Path, results: Sequence[ResultRecord]) -> None:
    """`--out`: one JSON line per response (id or line number, predicted score, verdict, grade)."""
    lines = []
    for r in results:
        row = {
            "id": r.id,
            "dataset": r.dataset,
            "line": r.line,
            "predicted_score": r.predicted_score,
            "verdict": r.verdict,
            "gold": r.gold,
            "grade": r.grade.model_dump(mode="json"),
        }
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    write_text_atomic(path, "".join(lines))
