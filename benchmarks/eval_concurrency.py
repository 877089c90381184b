"""Eval throughput: LLM grading against a loopback server with a fixed delay, and the offline rate.

    .venv/bin/python benchmarks/eval_concurrency.py [--delay 0.1] [--count 1000]

For each connection limit N it grades `count` responses through the real LLM grader (openai +
instructor over HTTP, cache and call log off) against a loopback OpenAI-compatible server that
answers every request after `delay` seconds, and prints the ratio ideal time / achieved time, where
ideal = count*D/N (1.0 is perfect). `workers` is the number of grading processes `grader eval`
picks for that run (1 = in-process; `--workers` overrides it). `steady` is the same ratio between
the grades at 10% and 90% of the run, which leaves out start-up (worker processes importing
openai and instructor) and the tail; `first s` is the time to the first grade. N=1 grades only
`count // 10` responses (the ideal is then 100 s for 1,000) and extrapolates: its ratio is
per-response and does not depend on the count. Each row also gives the CPU time per
response of the client (this process: grader, openai, instructor, httpx, results file) and of the
server (its own process), which tells which side limits the rate. Then it prints the offline
grader's rate over the first responses of a shared dataset (when the offline grader is installed).

`--cli` times whole `grader eval` commands in fresh processes instead (library imports, call log
on, metrics), in-process and with the workers `grader eval` picks, for each N:

    .venv/bin/python benchmarks/eval_concurrency.py --cli --connections 32
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.errors import GraderError
from grader.evaluation import runner
from grader.evaluation.dataset import EvalItem, load_datasets
from grader.models import EvalRecord
from grader.testing.openai_server import LoopbackOpenAIServer, Reply

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def reply(body: dict[str, Any]) -> Reply:
    arguments = {
        "key_points": [{"point": "Alpha", "status": "hit", "evidence": ""}],
        "misconceptions": [],
        "score": 1.0,
        "verdict": "correct",
        "feedback": "Well done.",
    }
    return Reply.tool_call("GradeResponse", arguments)


def items(count: int, tag: str = "alpha") -> list[EvalItem]:
    out = []
    for i in range(count):
        record = EvalRecord(
            question="Name the first letter.",
            reference_answer="Alpha.",
            student_answer=f"{tag} {i}",
            score=1,
            score_max=1,
        )
        out.append(EvalItem(f"bench:{i + 1}", "bench", i + 1, record))
    return out


def serve(delay: float) -> None:
    """Child process: run the loopback server until stdin closes (keeps its CPU off our GIL).

    Every line read from stdin is answered with the process's CPU seconds so far."""
    with LoopbackOpenAIServer(responder=reply, delay=delay) as server:
        print(server.base_url, flush=True)
        for _ in sys.stdin:
            print(f"{time.process_time():.6f}", flush=True)


@dataclass
class Server:
    base_url: str
    cpu: Callable[[], float]
    """The server process's CPU seconds so far."""


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and of its children that have exited.

    Grading workers exit when a run ends, so their CPU is counted; the server process is still
    running then, so it is not."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


@contextlib.contextmanager
def server_process(delay: float) -> Iterator[Server]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(delay)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    stdin, stdout = child.stdin, child.stdout
    assert stdin is not None and stdout is not None

    def cpu() -> float:
        stdin.write("cpu\n")
        stdin.flush()
        return float(stdout.readline())

    try:
        yield Server(stdout.readline().strip(), cpu)
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=10)


@dataclass
class Timing:
    elapsed: float
    client_cpu: float
    """This process and its grading workers."""
    server_cpu: float
    workers: int
    first_s: float
    """From the start of the run to its first grade (worker start-up shows here)."""
    steady_s: float
    """Time between the grades at 10% and at 90% of the run."""


def llm_run(server: Server, connections: int, count: int, workers: int | None) -> Timing:
    from grader.evaluation.workers import WorkerPlan, auto_workers
    from grader.graders.llm import LLMGrader
    from grader.settings import Settings

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            base_url=server.base_url, max_connections=connections, cache=False, log=False
        )
        grader = LLMGrader(settings, Path(tmp))
        # warm up: imports and first-call set-up are not part of the steady-state rate (the
        # timed run still opens its connections: grade_into closes them when it ends)
        runner.grade_into(
            Path(tmp) / "warm", grader, items(connections, "warm"), max_connections=connections
        )
        run_dir = Path(tmp) / "run"
        processes = workers or auto_workers(connections, count)
        plan = WorkerPlan(settings, Path(tmp), processes) if processes > 1 else None
        arrivals: list[float] = []

        def arrived(state: runner.Progress) -> None:
            if state.done > len(arrivals):  # a result, not the report before grading starts
                arrivals.append(time.perf_counter())

        server_cpu = server.cpu()
        client_cpu = cpu_seconds()
        started = time.perf_counter()
        results = runner.grade_into(
            run_dir,
            grader,
            items(count),
            max_connections=connections,
            workers=plan,
            progress=arrived,
        )
        elapsed = time.perf_counter() - started
        low, high = arrivals[count // 10], arrivals[count - 1 - count // 10]
        timing = Timing(
            elapsed,
            cpu_seconds() - client_cpu,
            server.cpu() - server_cpu,
            processes,
            first_s=arrivals[0] - started,
            steady_s=high - low,
        )
        grader.close()
        ungraded = sum(r.verdict == "ungraded" for r in results.values())
        if ungraded or len(results) != count:
            raise SystemExit(f"{ungraded} of {len(results)} responses ungraded at N={connections}")
    return timing


def cli_run(server: Server, connections: int, count: int, workers: int) -> float:
    """Seconds for a whole `grader eval` command in a fresh process (imports, grading with the
    call log on and the cache off, metrics): what a user waits for."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "responses.jsonl"
        data.write_text(
            "".join(item.record.model_dump_json() + "\n" for item in items(count)),
            encoding="utf-8",
        )
        argv = [sys.executable, "-m", "grader", "eval", str(data), "--grader", "llm"]
        argv += ["--base-url", server.base_url, "-c", str(connections), "--workers", str(workers)]
        argv += ["--no-cache", "--no-report", "--bootstrap", "0", "--json"]
        started = time.perf_counter()
        done = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env={**os.environ, "GRADER_HOME": tmp},
        )
        elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"grader eval failed: {done.stderr.strip()[-300:]}")
    overall = json.loads(done.stdout)["data"]["summary"]["overall"]
    if overall["n"] != count or overall["ungraded"]:
        graded, ungraded = overall["n"], overall["ungraded"]
        raise SystemExit(f"grader eval graded {graded} of {count}, {ungraded} ungraded")
    return elapsed


def cli_rows(delay: float, connections: list[int], count: int) -> None:
    from grader.evaluation.workers import auto_workers

    print(f"whole grader eval command, fresh process, D = {delay * 1000:.0f} ms, {count} responses")
    print(f"{'N':>4} {'workers':>7} {'seconds':>8} {'ideal grading s':>16}")
    with server_process(delay) as server:
        for n in connections:
            for workers in dict.fromkeys((1, auto_workers(n, count))):
                elapsed = cli_run(server, n, count, workers)
                print(f"{n:>4} {workers:>7} {elapsed:>8.2f} {count * delay / n:>16.2f}")


def offline_rate(limit: int) -> None:
    dataset = SHARED / "scientsbank_train.jsonl"
    try:
        from grader.graders.offline import OfflineGrader  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        print("offline grader: not installed in this checkout; skipped")
        return
    loaded = load_datasets([dataset], limit=limit)
    try:
        grader = OfflineGrader.load()
    except (GraderError, OSError) as exc:
        print(f"offline grader: cannot load ({exc}); skipped")
        return
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        runner.grade_into(Path(tmp) / "run", grader, loaded.items, max_connections=1)
        elapsed = time.perf_counter() - started
    n = len(loaded.items)
    from blas_kernel import describe

    print(describe())
    print(
        f"offline grader: {n} responses of {dataset.name} in {elapsed:.2f} s "
        f"= {n / elapsed:.0f} responses/s (model load excluded)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--delay", type=float, default=0.1, help="server delay D in seconds")
    parser.add_argument("--count", type=int, default=1000, help="responses per N")
    parser.add_argument("--connections", default="1,8,32,64", help="comma-separated N values")
    parser.add_argument("--offline-limit", type=int, default=1000)
    parser.add_argument(
        "--workers", type=int, default=None, help="grading processes (default: as grader eval)"
    )
    parser.add_argument(
        "--cli", action="store_true", help="time whole `grader eval` commands instead"
    )
    parser.add_argument("--serve", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    if args.cli:
        cli_rows(args.delay, [int(x) for x in args.connections.split(",")], args.count)
        return
    print(f"loopback LLM grading, D = {args.delay * 1000:.0f} ms, {args.count} responses")
    print(
        f"{'N':>4} {'workers':>7} {'graded':>7} {'achieved s':>11} {'ideal s':>8}"
        f" {'ideal/achieved':>15} {'steady':>7} {'first s':>8}"
        f" {'client CPU ms/resp':>19} {'server CPU ms/resp':>19}"
    )
    rows = []
    for n in (int(x) for x in args.connections.split(",")):
        count = max(n, args.count // 10) if n == 1 else args.count
        with server_process(args.delay) as server:
            timing = llm_run(server, n, count, args.workers)
        elapsed = timing.elapsed
        client_ms = timing.client_cpu * 1000 / count
        server_ms = timing.server_cpu * 1000 / count
        ideal = count * args.delay / n
        ratio = ideal / elapsed
        between = count - 1 - 2 * (count // 10)
        steady = (between * args.delay / n) / timing.steady_s if timing.steady_s else ratio
        note = (
            f"  (extrapolated to {args.count}: {elapsed * args.count / count:.1f} s)"
            if count != args.count
            else ""
        )
        print(
            f"{n:>4} {timing.workers:>7} {count:>7} {elapsed:>11.2f} {ideal:>8.2f}"
            f" {ratio:>15.3f} {steady:>7.3f} {timing.first_s:>8.2f}"
            f" {client_ms:>19.2f} {server_ms:>19.2f}{note}"
        )
        rows.append(
            {
                "n": n,
                "workers": timing.workers,
                "count": count,
                "achieved_s": elapsed,
                "ideal_s": ideal,
                "ratio": ratio,
                "steady_ratio": steady,
                "first_grade_s": timing.first_s,
                "client_cpu_ms_per_response": client_ms,
                "server_cpu_ms_per_response": server_ms,
            }
        )
    print(json.dumps(rows))
    if args.offline_limit:
        offline_rate(args.offline_limit)


if __name__ == "__main__":
    main()
