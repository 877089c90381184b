"""Per-grade overhead of the LLM path (our code), excluding the server's time.

The loopback server runs in its own process (so it does not share our GIL) and answers at once.
We time, for the same request:
  raw   - a bare `openai` chat.completions.create (HTTP round trip + openai client + server)
  grade - LLMGrader.grade with logging on and the cache off (the full path a user runs)
overhead = grade - raw: prompt rendering, instructor, validation, Grade conversion, SQLite log.
It can be negative: the adapter posts the same request without the walk of openai's typed params
that `create` does (about 0.5 ms; see `grader.llm.adapter.direct_create`), and raw includes it.
Also: a cache hit (no HTTP at all) and the path with --no-log.

Run: .venv/bin/python benchmarks/llm_overhead.py [N]
"""

from __future__ import annotations

import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

GOOD = {
    "key_points": [
        {"point": "Design", "status": "hit", "evidence": "design"},
        {"point": "Model development", "status": "hit", "evidence": "dev"},
        {"point": "Operations", "status": "partial", "evidence": "ops"},
    ],
    "misconceptions": [],
    "score": 0.83,
    "verdict": "correct",
    "feedback": "Good answer. Say more about operations.",
}


def _reply(body: dict[str, Any]) -> Any:
    from grader.testing.openai_server import Reply

    return Reply.tool_call(body["tools"][0]["function"]["name"], GOOD)


def _serve(queue: Any, stop: Any) -> None:
    from grader.testing.openai_server import LoopbackOpenAIServer

    with LoopbackOpenAIServer(responder=_reply) as server:
        queue.put(server.base_url)
        stop.wait()


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def main(n: int = 200) -> None:
    import openai

    from grader.graders.llm import LLMGrader, grade_messages
    from grader.llm.schemas import GradeResponse
    from grader.models import Card
    from grader.settings import Settings

    ctx = multiprocessing.get_context("spawn")
    queue, stop = ctx.Queue(), ctx.Event()
    server = ctx.Process(target=_serve, args=(queue, stop), daemon=True)
    server.start()
    base_url = queue.get(timeout=30)
    card = Card(
        id="c1",
        question="Name the three phases of MLOps.",
        answer="- Design\n- Model development\n- Operations",
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            home = Path(tmp)
            settings = Settings(base_url=base_url, api_key="sk-bench", model="m", cache=False)
            grader = LLMGrader(settings, home)
            messages = grade_messages(grader.template, card, "answer")
            raw_client = openai.OpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
            import instructor

            wrapped: Any = instructor.openai_schema(GradeResponse)
            request: dict[str, Any] = {
                "model": "m",
                "messages": messages,
                "tools": [{"type": "function", "function": wrapped.openai_schema}],
                "tool_choice": {"type": "function", "function": {"name": "GradeResponse"}},
                "temperature": 0.0,
                "seed": 1234,
            }

            def raw() -> None:
                raw_client.chat.completions.create(**request)

            def timed(fn: Any) -> list[float]:
                for _ in range(10):  # warm up connections and caches
                    fn()
                samples = []
                for _ in range(n):
                    start = time.perf_counter()
                    fn()
                    samples.append(time.perf_counter() - start)
                return samples

            raw_ms = _median_ms(timed(raw))
            grade_ms = _median_ms(timed(lambda: grader.grade(card, "answer")))
            no_log = LLMGrader(settings.model_copy(update={"log": False}), home)
            no_log_ms = _median_ms(timed(lambda: no_log.grade(card, "answer")))
            cached = LLMGrader(settings.model_copy(update={"cache": True}), home)
            cached.grade(card, "cached answer")
            cached_ms = _median_ms(timed(lambda: cached.grade(card, "cached answer")))
            for g in (grader, no_log, cached):
                g.close()
            raw_client.close()
    finally:
        stop.set()
        server.join(timeout=5)

    print(f"LLM path overhead, median of {n} calls, loopback server in its own process")
    print(f"  raw openai call (HTTP + openai client + server): {raw_ms:7.2f} ms")
    print(f"  LLMGrader.grade, log on, cache off:              {grade_ms:7.2f} ms")
    print(f"  LLMGrader.grade, --no-log, cache off:            {no_log_ms:7.2f} ms")
    print(f"  LLMGrader.grade, cache hit (no HTTP):            {cached_ms:7.2f} ms")
    print(f"  our overhead per grade (grade - raw):            {grade_ms - raw_ms:7.2f} ms")
    print(f"  our overhead per grade, --no-log:                {no_log_ms - raw_ms:7.2f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
