"""LLM eval grading spread over worker processes that share one connection limit.

One event loop tops out at a few hundred requests per second: openai and instructor spend a few
milliseconds of CPU on each. With many connections and a fast endpoint the client, not the
server, becomes the limit, so `grader eval` can run the LLM grader in several processes. The
parent owns the run: each worker has at most its share of the connection limit in flight, with
a couple more responses queued in it; the parent takes the grades back over a pipe and alone
writes `results.jsonl` (so kill -9 and `--resume` behave as in one process). A worker that dies
leaves the responses it held `ungraded`.

Workers are forked from the parent after it has loaded openai and instructor (about a second of
CPU a fresh interpreter would spend on its own), before its event loop or any progress thread
starts; where fork is unavailable or unsafe (not Linux), they run `python -m
grader.evaluation.workers`. Either way they speak the same protocol over stdin and stdout.

Protocol, one JSON object per line. Parent to worker: first `{"settings", "home"}`, then
`{"n", "card", "answer"}` per response; closing stdin means no more. Worker to parent:
`{"n", "grade"}` per response. A worker keeps at most `settings.max_connections` (its share of
the limit) requests in flight; the parent keeps `QUEUED_PER_WORKER` more responses in it, which
the LLM grader starts at once (`calls_at_once`), their requests ready to send. The API key
travels over the pipe, never in argv or the environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import traceback
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel

from grader.evaluation.dataset import EvalItem, card_for
from grader.graders.base import calls_at_once
from grader.models import Card, Grade, GradeEvidence
from grader.settings import Settings

CONNECTIONS_PER_WORKER = 11
"""Connections one grading process serves well. An event loop spends a few milliseconds of CPU
on each request, and once it is busy most of the time every request also waits its turn: on 2
cores at D = 100 ms, 16 connections graded at 0.79-0.82 of ideal in one process and 0.86-0.87
in two (two runs each), and in 8 interleaved pairs of runs at 32 connections three processes
beat two 7 times (one tie), by 0.025 of ideal on average."""
QUEUED_PER_WORKER = 2
"""Responses a worker holds beyond its share of connections, so that when a request ends it
starts the next at once instead of waiting for the parent to send one (the parent is another
process on a busy machine). At N = 32 and D = 100 ms this won 8 of 10 interleaved pairs of runs,
by 0.021 of ideal on average (steady state: 9 of 10, by 0.03); 1, 2 and 4 measured the same."""
MIN_RESPONSES_FOR_WORKERS = 200
"""Smaller runs grade in-process: starting workers would cost more than it saves."""
LINE_LIMIT = 16 * 1024 * 1024
STDERR_TAIL = 5
SPAWN_COMMAND = (sys.executable, "-m", "grader.evaluation.workers")

GraderFactory = Callable[[Settings, Path], Any]


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def auto_workers(max_connections: int, pending: int, cpus: int | None = None) -> int:
    """How many grading processes `--workers auto` uses (1 means grade in-process): one per
    `CONNECTIONS_PER_WORKER` connections, at most one more than the CPUs (the processes spend
    much of their time waiting on the network; on one CPU, one)."""
    if pending < MIN_RESPONSES_FOR_WORKERS:
        return 1
    cpus = available_cpus() if cpus is None else cpus
    wanted = -(-max_connections // CONNECTIONS_PER_WORKER)  # rounded up
    return max(1, min(cpus + 1 if cpus > 1 else 1, wanted))


def connection_shares(max_connections: int, workers: int) -> list[int]:
    """Split the connection limit over the workers, as evenly as possible, each at least 1."""
    workers = max(1, min(workers, max_connections))
    base, extra = divmod(max_connections, workers)
    return [base + (1 if i < extra else 0) for i in range(workers)]


def llm_grader(settings: Settings, home: Path) -> Any:
    from grader.graders.llm import LLMGrader

    return LLMGrader(settings, home)


def preload_llm(settings: Settings) -> None:
    from grader.graders.llm import preload

    preload(settings)


def can_fork() -> bool:
    """Forking a process that has loaded openai is safe on Linux; macOS's system libraries are
    not fork-safe, and Windows has no fork."""
    return sys.platform.startswith("linux") and hasattr(os, "fork")


@dataclass(frozen=True)
class WorkerPlan:
    """How to start the grading workers: what they grade with, and how many there are."""

    settings: Settings
    home: Path
    workers: int
    make_grader: GraderFactory = llm_grader
    """What a forked worker grades with, built from the settings it receives over the pipe."""
    preload: Callable[[Settings], None] = preload_llm
    """Runs once in the parent before forking, so the workers start with it done."""
    command: Sequence[str] | None = field(default=None)
    """Run this command instead of forking (scripted workers in tests; `SPAWN_COMMAND` where
    fork is unavailable)."""

    def spawn_command(self) -> Sequence[str] | None:
        if self.command is not None:
            return self.command
        return None if can_fork() else SPAWN_COMMAND


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


# -- starting workers (before the event loop) ------------------------------------------------


@dataclass
class StartedWorker:
    """A running worker process and the parent's ends of its three pipes."""

    pid: int
    stdin: int
    stdout: int
    stderr: int
    share: int
    """Responses this worker may have in flight."""
    wait: Callable[[], int]
    """Block until the process exits; its exit code (negative: killed by that signal)."""
    exited: bool = False
    adopted: bool = False
    """The pipes belong to an event loop now, which closes them."""

    def kill(self) -> None:
        if not self.exited:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def reap(self) -> None:
        """Kill the process if it still runs, wait for it, close the pipes nobody adopted."""
        self.kill()
        if not self.adopted:
            for fd in (self.stdin, self.stdout, self.stderr):
                with contextlib.suppress(OSError):
                    os.close(fd)
        if not self.exited:
            self.wait()
            self.exited = True


def _pipes() -> tuple[tuple[int, int], tuple[int, int], tuple[int, int]]:
    return os.pipe(), os.pipe(), os.pipe()


def _spawn(command: Sequence[str], share: int) -> StartedWorker:
    (in_r, in_w), (out_r, out_w), (err_r, err_w) = _pipes()
    try:
        process = subprocess.Popen(command, stdin=in_r, stdout=out_w, stderr=err_w)
    finally:
        for fd in (in_r, out_w, err_w):
            os.close(fd)
    return StartedWorker(process.pid, in_w, out_r, err_r, share, wait=process.wait)


def _fork(make_grader: GraderFactory, share: int) -> StartedWorker:
    (in_r, in_w), (out_r, out_w), (err_r, err_w) = _pipes()
    # Python 3.12+ warns about forking with threads; the child uses none of the parent's locks:
    # it gets fresh standard streams and its own event loop, and never returns into our stack.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:
        _run_forked_child(make_grader, in_r, out_w, err_w)
    for fd in (in_r, out_w, err_w):
        os.close(fd)

    def wait() -> int:
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    return StartedWorker(pid, in_w, out_r, err_r, share, wait=wait)


def _run_forked_child(make_grader: GraderFactory, stdin: int, stdout: int, stderr: int) -> None:
    """The forked worker: the pipes become fds 0-2, every other inherited fd is closed (sockets,
    the results file, other workers' pipes), then it serves until stdin closes. Never returns."""
    code = 1
    try:
        gc.freeze()  # inherited objects are never collected here, so none closes a reused fd
        os.dup2(stdin, 0)
        os.dup2(stdout, 1)
        os.dup2(stderr, 2)
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
        sys.stdout = sys.stderr = open(2, "w", encoding="utf-8", closefd=False, buffering=1)  # noqa: SIM115
        main(make_grader)
        code = 0
    except BaseException:
        with contextlib.suppress(Exception):
            traceback.print_exc()
            sys.stderr.flush()
    finally:
        os._exit(code)


@contextlib.contextmanager
def started_workers(plan: WorkerPlan, max_connections: int) -> Iterator[list[StartedWorker]]:
    """Start `plan.workers` processes (call before any event loop or thread starts); kill any
    still running on the way out."""
    command = plan.spawn_command()
    if command is None:
        plan.preload(plan.settings)
    workers: list[StartedWorker] = []
    try:
        for share in connection_shares(max_connections, plan.workers):
            if command is None:
                workers.append(_fork(plan.make_grader, share))
            else:
                workers.append(_spawn(command, share))
            with contextlib.suppress(BrokenPipeError):  # a worker already gone shows as EOF
                os.write(workers[-1].stdin, _init_line(plan.settings, plan.home, share))
        yield workers
    finally:
        for worker in workers:
            worker.reap()


# -- driving workers (inside the event loop) -------------------------------------------------


class _Worker:
    """One started worker as the event loop sees it."""

    def __init__(
        self,
        started: StartedWorker,
        stdin: asyncio.StreamWriter,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
        transports: list[asyncio.BaseTransport],
    ) -> None:
        self.started = started
        self.share = started.share
        self.stdin = stdin
        self.stdout = stdout
        self.transports = transports
        self.stderr_tail: deque[str] = deque(maxlen=STDERR_TAIL)
        self._stderr_task = asyncio.create_task(self._drain_stderr(stderr))

    @classmethod
    async def adopt(cls, started: StartedWorker) -> _Worker:
        """Hand the pipes to the running event loop, which owns them from then on."""
        loop = asyncio.get_running_loop()
        transports: list[asyncio.BaseTransport] = []

        async def reader(fd: int) -> asyncio.StreamReader:
            stream = asyncio.StreamReader(limit=LINE_LIMIT)
            transport, _ = await loop.connect_read_pipe(
                lambda: asyncio.StreamReaderProtocol(stream), os.fdopen(fd, "rb", buffering=0)
            )
            transports.append(transport)
            return stream

        started.adopted = True
        stdout, stderr = await reader(started.stdout), await reader(started.stderr)
        transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()),
            os.fdopen(started.stdin, "wb", buffering=0),
        )
        transports.append(transport)
        stdin = asyncio.StreamWriter(transport, protocol, None, loop)
        return cls(started, stdin, stdout, stderr, transports)

    async def _drain_stderr(self, stderr: asyncio.StreamReader) -> None:
        async for line in stderr:
            text = line.decode("utf-8", "replace").strip()
            if text:
                self.stderr_tail.append(text)

    def send(self, line: bytes) -> None:
        if not self.stdin.is_closing():
            self.stdin.write(line)

    async def flush(self) -> None:
        with contextlib.suppress(ConnectionError):
            await self.stdin.drain()

    async def receive(self) -> bytes:
        return await self.stdout.readline()

    async def _wait(self) -> int:
        code = await asyncio.to_thread(self.started.wait)
        self.started.exited = True
        await self._stderr_task
        return code

    async def exit_reason(self) -> str:
        """Why the worker stopped answering (call once its stdout has ended)."""
        code = await self._wait()
        last = self.stderr_tail[-1] if self.stderr_tail else ""
        return f"grading worker exited with code {code}" + (f": {last}" if last else "")

    async def finish(self) -> None:
        self.stdin.close()
        await self._wait()

    def close(self) -> None:
        """Close the pipes (the process itself is reaped by `started_workers`)."""
        self._stderr_task.cancel()
        for transport in self.transports:
            transport.close()


async def grade_in_workers(
    started: Sequence[StartedWorker],
    settings: Settings,
    items: Sequence[EvalItem],
    on_grade: Callable[[EvalItem, Grade], None],
) -> None:
    """Grade `items` in the started workers, each with at most its share in flight and
    `QUEUED_PER_WORKER` more waiting."""
    queue = deque(items)
    numbers = count()
    redact = settings.redact
    workers: list[_Worker] = []

    async def drive(worker: _Worker) -> None:
        handed_out: dict[int, EvalItem] = {}

        async def top_up() -> None:
            while queue and len(handed_out) < worker.share + QUEUED_PER_WORKER:
                item = queue.popleft()
                n = next(numbers)
                handed_out[n] = item
                message = {
                    "n": n,
                    "card": card_for(item.record).model_dump(mode="json"),
                    "answer": item.record.student_answer,
                }
                worker.send((json.dumps(message) + "\n").encode())
            await worker.flush()

        await top_up()
        while handed_out:
            line = await worker.receive()
            if not line:
                reason = redact(await worker.exit_reason())
                for item in handed_out.values():
                    on_grade(item, _worker_failed(settings, reason))
                return
            reply = _Reply.model_validate_json(line)
            on_grade(handed_out.pop(reply.n), reply.grade)
            await top_up()
        await worker.finish()

    try:
        for one in started:
            workers.append(await _Worker.adopt(one))
        await asyncio.gather(*(drive(w) for w in workers))
        for item in queue:  # every worker died before these were handed out
            on_grade(item, _worker_failed(settings, "no grading worker left"))
    finally:
        for worker in workers:
            worker.close()


# -- the worker process ---------------------------------------------------------------------


async def serve(lines: asyncio.StreamReader, out: IO[bytes], make_grader: GraderFactory) -> None:
    """Worker side: grade the response lines as they arrive, as many at once as
    `calls_at_once` allows for `max_connections`, and write each grade when it is done."""
    init = json.loads(await lines.readline())
    settings = Settings.model_validate(init["settings"])
    grader = make_grader(settings, Path(init["home"]))
    pending: set[asyncio.Task[None]] = set()
    at_once = asyncio.Semaphore(calls_at_once(grader, settings.max_connections))

    async def grade_one(n: int, card: Card, answer: str) -> None:
        try:
            async with at_once:
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


async def _main(make_grader: GraderFactory) -> None:
    loop = asyncio.get_running_loop()
    lines = asyncio.StreamReader(limit=LINE_LIMIT)
    stdin = open(0, "rb", buffering=0, closefd=False)  # noqa: SIM115
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(lines), stdin)
    # the protocol owns fd 1; anything a library prints goes to stderr instead
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    await serve(lines, out, make_grader)


def main(make_grader: GraderFactory = llm_grader) -> None:
    # Ctrl-C reaches the whole process group; the parent decides, and kills its workers. A
    # forked worker must not inherit the parent's SIGTERM handler either.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        asyncio.run(_main(make_grader))
    except BrokenPipeError:  # the parent is gone: nobody is left to read the grades
        os._exit(0)


if __name__ == "__main__":
    main()
