"""LLM eval grading spread over worker processes that share one connection limit.

One event loop tops out at a few hundred requests per second: openai and instructor spend a few
milliseconds of CPU on each. With many connections and a fast endpoint the client, not the
server, becomes the limit, so `grader eval` can run the LLM grader in several processes. The
parent owns the run: it hands each worker at most its share of the connection limit at a time,
takes the grades back over a pipe, and alone writes `results.jsonl` (so kill -9 and `--resume`
behave as in one process). A worker that dies leaves its in-flight responses `ungraded`.

Protocol, one JSON object per line. Parent to worker: first `{"settings", "home"}`, then
`{"n", "card", "answer"}` per response; closing stdin means no more. Worker to parent:
`{"n", "grade"}` per response. The API key travels over the pipe, never in argv or the
environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel

from grader.evaluation.dataset import EvalItem, card_for
from grader.models import Card, Grade, GradeEvidence
from grader.settings import Settings

CONNECTIONS_PER_WORKER = 16
"""Connections one process serves before another one is worth its start-up (~1 s of CPU)."""
MIN_RESPONSES_FOR_WORKERS = 200
"""Smaller runs grade in-process: start-up would cost more than it saves."""
LINE_LIMIT = 16 * 1024 * 1024
STDERR_TAIL = 5


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def auto_workers(max_connections: int, pending: int, cpus: int | None = None) -> int:
    """How many grading processes `--workers auto` uses (1 means grade in-process)."""
    if pending < MIN_RESPONSES_FOR_WORKERS:
        return 1
    cpus = available_cpus() if cpus is None else cpus
    return max(1, min(cpus, max_connections // CONNECTIONS_PER_WORKER))


def connection_shares(max_connections: int, workers: int) -> list[int]:
    """Split the connection limit over the workers, as evenly as possible, each at least 1."""
    workers = max(1, min(workers, max_connections))
    base, extra = divmod(max_connections, workers)
    return [base + (1 if i < extra else 0) for i in range(workers)]


@dataclass(frozen=True)
class WorkerPlan:
    """How to start the grading workers: what they grade with, and how many there are."""

    settings: Settings
    home: Path
    workers: int
    argv: Sequence[str] = field(
        default_factory=lambda: (sys.executable, "-m", "grader.evaluation.workers")
    )
    """The worker command; tests substitute one that fails on purpose."""


def _init_line(settings: Settings, home: Path, connections: int) -> bytes:
    data = settings.model_dump(mode="json")
    data["api_key"] = settings.api_key.get_secret_value() if settings.api_key else None
    data["max_connections"] = connections
    return (json.dumps({"settings": data, "home": str(home)}) + "\n").encode()


class _Reply(BaseModel):
    n: int
    grade: Grade


def _worker_failed(settings: Settings, reason: str) -> Grade:
    evidence = GradeEvidence(
        grader="llm", model=settings.model, base_url=settings.base_url, attempts=0
    )
    return Grade.ungraded(f"grader failed: {reason}", evidence)


class _Worker:
    """One worker process as the parent sees it."""

    def __init__(self, process: asyncio.subprocess.Process, share: int) -> None:
        self.process = process
        self.share = share
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL)
        self._stderr_task = asyncio.create_task(self._drain_stderr())

    @classmethod
    async def start(cls, plan: WorkerPlan, share: int) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            *plan.argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            limit=LINE_LIMIT,
        )
        worker = cls(process, share)
        worker.send(_init_line(plan.settings, plan.home, share))
        return worker

    async def _drain_stderr(self) -> None:
        assert self.process.stderr is not None
        async for line in self.process.stderr:
            text = line.decode("utf-8", "replace").strip()
            if text:
                self.stderr_tail.append(text)

    def send(self, line: bytes) -> None:
        assert self.process.stdin is not None
        if not self.process.stdin.is_closing():
            self.process.stdin.write(line)

    async def flush(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(ConnectionError):
            await self.process.stdin.drain()

    async def receive(self) -> bytes:
        assert self.process.stdout is not None
        return await self.process.stdout.readline()

    async def exit_reason(self) -> str:
        """Why the worker stopped answering (call once its stdout has ended)."""
        code = await self.process.wait()
        await self._stderr_task
        last = self.stderr_tail[-1] if self.stderr_tail else ""
        return f"grading worker exited with code {code}" + (f": {last}" if last else "")

    async def finish(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        await self.process.wait()
        await self._stderr_task

    def kill(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()


async def grade_in_workers(
    plan: WorkerPlan,
    items: Sequence[EvalItem],
    max_connections: int,
    on_grade: Callable[[EvalItem, Grade], None],
) -> None:
    """Grade `items` in `plan.workers` processes, at most `max_connections` in flight in all."""
    queue = deque(items)
    numbers = count()
    redact = plan.settings.redact
    workers: list[_Worker] = []

    async def drive(worker: _Worker) -> None:
        in_flight: dict[int, EvalItem] = {}

        async def top_up() -> None:
            while queue and len(in_flight) < worker.share:
                item = queue.popleft()
                n = next(numbers)
                in_flight[n] = item
                message = {
                    "n": n,
                    "card": card_for(item.record).model_dump(mode="json"),
                    "answer": item.record.student_answer,
                }
                worker.send((json.dumps(message) + "\n").encode())
            await worker.flush()

        await top_up()
        while in_flight:
            line = await worker.receive()
            if not line:
                reason = redact(await worker.exit_reason())
                for item in in_flight.values():
                    on_grade(item, _worker_failed(plan.settings, reason))
                return
            reply = _Reply.model_validate_json(line)
            on_grade(in_flight.pop(reply.n), reply.grade)
            await top_up()
        await worker.finish()

    try:
        for share in connection_shares(max_connections, plan.workers):
            workers.append(await _Worker.start(plan, share))
        await asyncio.gather(*(drive(w) for w in workers))
        for item in queue:  # every worker died before these were handed out
            on_grade(item, _worker_failed(plan.settings, "no grading worker left"))
    finally:
        for worker in workers:
            worker.kill()


# -- the worker process ---------------------------------------------------------------------


async def serve(
    lines: asyncio.StreamReader, out: IO[bytes], make_grader: Callable[[Settings, Path], Any]
) -> None:
    """Worker side: grade each response line as it arrives, write each grade when it is done."""
    init = json.loads(await lines.readline())
    settings = Settings.model_validate(init["settings"])
    grader = make_grader(settings, Path(init["home"]))
    pending: set[asyncio.Task[None]] = set()

    async def grade_one(n: int, card: Card, answer: str) -> None:
        try:
            grade = await grader.agrade(card, answer)
        except Exception as exc:  # a grader failure is `ungraded`, never fatal
            grade = _worker_failed(settings, " ".join(str(exc).split())[:300] or type(exc).__name__)
        out.write(f'{{"n": {n}, "grade": {grade.model_dump_json()}}}\n'.encode())
        out.flush()

    try:
        while line := await lines.readline():
            message = json.loads(line)
            card = Card.model_validate(message["card"])
            task = asyncio.create_task(grade_one(message["n"], card, message["answer"]))
            pending.add(task)
            task.add_done_callback(pending.discard)
        await asyncio.gather(*pending)
    finally:
        await grader.aclose()


def _llm_grader(settings: Settings, home: Path) -> Any:
    from grader.graders.llm import LLMGrader

    return LLMGrader(settings, home)


async def _main(make_grader: Callable[[Settings, Path], Any]) -> None:
    loop = asyncio.get_running_loop()
    lines = asyncio.StreamReader(limit=LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(lines), sys.stdin)
    # the protocol owns fd 1; anything a library prints goes to stderr instead
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    await serve(lines, out, make_grader)


def main(make_grader: Callable[[Settings, Path], Any] = _llm_grader) -> None:
    # Ctrl-C reaches the whole process group; the parent decides, and kills its workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        asyncio.run(_main(make_grader))
    except BrokenPipeError:  # the parent is gone: nobody is left to read the grades
        os._exit(0)


if __name__ == "__main__":
    main()
