"""The real openai + instructor stack over real HTTP against the loopback server."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, model_validator

from grader.graders.llm import LLMGrader
from grader.llm.adapter import LLMClient
from grader.llm.callog import DB_NAME, CallLog
from grader.models import Card, Grade
from grader.settings import InstructorMode, Settings
from grader.testing.openai_server import InFlight, LoopbackOpenAIServer, Reply, wait_until

KEY = "sk-loopback-secret-0123456789"
CARD = Card(
    id="c1",
    question="Name the three phases of MLOps.",
    answer="- Design\n- Model development\n- Operations",
)
RUBRIC = ["Design", "Model development", "Operations"]
GOOD: dict[str, Any] = {
    "key_points": [
        {"point": "Design", "status": "hit", "evidence": "design"},
        {"point": "Model development", "status": "hit", "evidence": "development"},
        {"point": "Operations", "status": "partial", "evidence": "ops"},
    ],
    "misconceptions": [],
    "score": 0.83,
    "verdict": "correct",
    "feedback": "Good answer. Say more about operations.",
}
BAD: dict[str, Any] = {**GOOD, "verdict": "partial"}  # disagrees with the score


def reply_for(body: dict[str, Any], payload: dict[str, Any]) -> Reply:
    """A tool call when the request offers tools, else JSON content (the mode decides)."""
    if body.get("tools"):
        return Reply.tool_call(body["tools"][0]["function"]["name"], payload)
    if body.get("response_format"):  # json / json_schema modes: the content is the JSON
        return Reply.content(payload)
    return Reply.content("Here it is:\n```json\n" + json.dumps(payload) + "\n```")  # md_json


GraderFor = Callable[..., LLMGrader]


@pytest.fixture
def grader_for(grader_home: Path) -> Iterator[GraderFor]:
    """Makes LLM graders for a loopback server; closes them (and their sockets) afterwards."""
    made: list[LLMGrader] = []

    def make(server: LoopbackOpenAIServer, **overrides: Any) -> LLMGrader:
        options: dict[str, Any] = {"base_url": server.base_url, "api_key": KEY, "model": "m"}
        options.update(overrides)
        made.append(LLMGrader(Settings(**options), grader_home))
        return made[-1]

    yield make
    for grader in made:
        grader.close()


def grade_all_async(grader: LLMGrader, items: list[tuple[Card, str]]) -> list[Grade]:
    """`agrade_many` on a fresh event loop, closing the grader's async client before it ends."""

    async def run() -> list[Grade]:
        try:
            return await grader.agrade_many(items)
        finally:
            await grader.aclose()

    return asyncio.run(run())


@pytest.mark.parametrize("mode", ["tools", "json", "md_json", "json_schema"])
def test_valid_grade_in_every_mode(mode: InstructorMode, grader_for: GraderFor) -> None:
    with LoopbackOpenAIServer(responder=lambda body: reply_for(body, GOOD)) as server:
        grade = grader_for(server, mode=mode).grade(CARD, "design, dev, some ops")
        body = server.requests[0]
        base_url = server.base_url
    assert grade.verdict == "correct"
    assert grade.score == pytest.approx(0.83)
    assert [p.status for p in grade.key_points] == ["hit", "hit", "partial"]
    assert grade.evidence.attempts == 1
    assert grade.evidence.usage.prompt_tokens == 10
    assert grade.evidence.base_url == base_url
    assert body["temperature"] == 0.0
    assert body["seed"] == 1234
    assert body["model"] == "m"
    assert ("tools" in body) == (mode == "tools")


def test_tool_call_and_json_content_wire_formats(grader_for: GraderFor) -> None:
    replies = [Reply.tool_call("GradeResponse", GOOD), Reply.content(GOOD)]
    with LoopbackOpenAIServer(replies) as server:
        tools = grader_for(server, mode="tools").grade(CARD, "a")
        content = grader_for(server, mode="json").grade(CARD, "b")
    assert tools.verdict == content.verdict == "correct"


def test_invalid_then_valid_reasks_and_sums_usage(grader_for: GraderFor) -> None:
    replies = [Reply.tool_call("GradeResponse", BAD), Reply.tool_call("GradeResponse", GOOD)]
    with LoopbackOpenAIServer(replies) as server:
        grade = grader_for(server).grade(CARD, "a")
        second = server.requests[1]
    assert grade.verdict == "correct"
    assert grade.evidence.attempts == 2
    assert grade.evidence.usage.prompt_tokens == 20
    assert grade.evidence.usage.completion_tokens == 10
    reask = " ".join(str(m.get("content")) for m in second["messages"])
    assert "disagrees with score" in reask, "the validator's message drives the re-ask"


def test_never_valid_is_ungraded(grader_for: GraderFor) -> None:
    with LoopbackOpenAIServer(responder=lambda body: reply_for(body, BAD)) as server:
        grade = grader_for(server, max_reasks=2).grade(CARD, "a")
        sent = len(server.requests)
    assert sent == 3
    assert grade.verdict == "ungraded"
    assert grade.score is None
    assert grade.reason is not None
    assert "never validated after 3 attempts" in grade.reason
    assert "disagrees" in grade.reason


def test_output_that_is_not_json_is_ungraded(grader_for: GraderFor) -> None:
    with LoopbackOpenAIServer(responder=lambda body: Reply.content("I think it is great!")) as s:
        grade = grader_for(s, mode="json", max_reasks=1).grade(CARD, "a")
    assert grade.verdict == "ungraded"
    assert grade.reason and "output" in grade.reason


def test_429_with_retry_after_is_retried(grader_for: GraderFor) -> None:
    replies = [
        Reply.error(429, "slow down", headers={"Retry-After": "0.05"}),
        Reply.tool_call("GradeResponse", GOOD),
    ]
    with LoopbackOpenAIServer(replies) as server:
        grade = grader_for(server, max_retries=2).grade(CARD, "a")
        sent = len(server.requests)
    assert grade.verdict == "correct"
    assert sent == 2


def test_429_until_retries_run_out_is_ungraded(grader_for: GraderFor) -> None:
    limited = Reply.error(429, "slow down", headers={"retry-after-ms": "10"})
    with LoopbackOpenAIServer([limited, limited]) as server:
        grade = grader_for(server, max_retries=1).grade(CARD, "a")
        base_url = server.base_url
    assert grade.verdict == "ungraded"
    assert grade.reason == f"rate limited by {base_url} (HTTP 429) after 1 retries: slow down"


def test_500_then_success_and_500_forever(grader_for: GraderFor) -> None:
    boom = Reply.error(500, "boom", headers={"retry-after-ms": "10"})
    with LoopbackOpenAIServer([boom, Reply.tool_call("GradeResponse", GOOD), boom, boom]) as server:
        ok = grader_for(server, max_retries=1).grade(CARD, "a")
        failed = grader_for(server, max_retries=1).grade(CARD, "b")
    assert ok.verdict == "correct"
    assert failed.verdict == "ungraded"
    assert failed.reason is not None and "HTTP 500" in failed.reason


def test_timeout_is_ungraded(grader_for: GraderFor) -> None:
    with LoopbackOpenAIServer([Reply.hang(10)]) as server:
        grade = grader_for(server, timeout=0.3, max_retries=0).grade(CARD, "a")
    assert grade.verdict == "ungraded"
    assert grade.reason is not None and "timed out after 0.3s" in grade.reason


def test_timeout_reason_names_the_setting(grader_for: GraderFor) -> None:
    with LoopbackOpenAIServer([Reply.hang(10)]) as server:
        grade = grader_for(server, timeout=0.3, max_retries=0).grade(CARD, "a")
    assert grade.reason is not None and "raise the timeout (GRADER_TIMEOUT" in grade.reason


def test_404_from_a_base_url_without_v1_suggests_v1(grader_for: GraderFor) -> None:
    """Ollama's `http://localhost:11434` answers a plain-text 404; its API is under /v1."""
    not_found = Reply(status=404, raw=b"404 page not found", headers={"Content-Type": "text/plain"})
    with LoopbackOpenAIServer([not_found]) as server:
        root = server.base_url.removesuffix("/v1")
        grade = grader_for(server, base_url=root, max_retries=0).grade(CARD, "a")
    assert grade.verdict == "ungraded"
    assert grade.reason == (
        f"HTTP 404 from {root}: OpenAI-compatible servers answer under /v1; try base_url {root}/v1"
    )


def test_404_keeps_the_servers_message(grader_for: GraderFor) -> None:
    missing = Reply.error(404, 'model "m" not found, try pulling it first')
    with LoopbackOpenAIServer([missing]) as server:
        grade = grader_for(server, max_retries=0).grade(CARD, "a")
        base_url = server.base_url
    assert grade.reason == (
        f'HTTP 404 from {base_url}: model "m" not found, try pulling it first; '
        "is model 'm' served there?"
    )


@pytest.mark.parametrize(
    ("status", "message", "hint"),
    [
        (400, "registry.ollama.ai/library/gemma3:4b does not support tools", "try mode json"),
        (500, "Unsupported param: tools", "try mode json or md_json"),
        (422, "seed: Extra inputs are not permitted", "set seed = false"),
        (400, "'response_format.type' must be 'json_schema' or 'text'", "try mode md_json"),
        (400, "max_tokens is too large", None),
    ],
)
def test_a_refused_request_gives_the_servers_reason_and_the_setting_to_change(
    grader_for: GraderFor, status: int, message: str, hint: str | None
) -> None:
    with LoopbackOpenAIServer([Reply.error(status, message)]) as server:
        grade = grader_for(server, max_retries=0).grade(CARD, "a")
        base_url = server.base_url
    assert grade.verdict == "ungraded"
    assert grade.reason is not None
    assert grade.reason.startswith(f"HTTP {status} from {base_url}: {message}")
    assert "Error code" not in grade.reason
    if hint is None:
        assert grade.reason == f"HTTP {status} from {base_url}: {message}"
    else:
        assert hint in grade.reason


def test_json_in_a_code_fence_in_json_mode_suggests_md_json(grader_for: GraderFor) -> None:
    """A server that ignores response_format lets the model fence its JSON; md_json reads it."""
    fenced = Reply.content("Here it is:\n```json\n" + json.dumps(GOOD) + "\n```")
    with LoopbackOpenAIServer(responder=lambda body: fenced) as server:
        grade = grader_for(server, mode="json", max_reasks=0).grade(CARD, "a")
        md = grader_for(server, mode="md_json").grade(CARD, "a")
    assert grade.verdict == "ungraded"
    assert grade.reason is not None and "try mode md_json" in grade.reason
    assert md.verdict == "correct"


def test_a_key_echoed_where_the_reason_is_cut_short_is_still_redacted(
    grader_for: GraderFor,
) -> None:
    """The reason line is cut at 300 characters; redaction must come first, or the cut would
    leave the start of the key unrecognised."""
    for filler in (250, 280, 295):
        echo = Reply.error(400, "x" * filler + " bad key " + KEY)
        with LoopbackOpenAIServer([echo]) as server:
            grade = grader_for(server, max_retries=0).grade(CARD, "a")
        assert grade.reason is not None
        assert "sk-loop" not in grade.reason and KEY[:8] not in grade.reason


def test_a_score_sent_as_a_string_is_read_as_a_number(grader_for: GraderFor) -> None:
    """Local models often quote numbers; validation is lax, every validator still applies."""
    quoted = {**GOOD, "score": "0.83"}
    with LoopbackOpenAIServer(responder=lambda body: reply_for(body, quoted)) as server:
        grade = grader_for(server).grade(CARD, "a")
    assert grade.verdict == "correct"
    assert grade.score == pytest.approx(0.83)


def test_tool_call_arguments_sent_as_an_object_grade_without_warnings(
    grader_for: GraderFor, recwarn: pytest.WarningsRecorder
) -> None:
    """llama.cpp and Ollama may send `arguments` as a JSON object rather than a string."""

    def as_object(body: dict[str, Any]) -> Reply:
        reply = Reply.tool_call("GradeResponse", GOOD)
        assert reply.body is not None
        for call in reply.body["choices"][0]["message"]["tool_calls"]:
            call["function"]["arguments"] = json.loads(call["function"]["arguments"])
        return reply

    with LoopbackOpenAIServer(responder=as_object) as server:
        grade = grader_for(server).grade(CARD, "a")
    assert grade.verdict == "correct"
    assert not [w for w in recwarn if "Pydantic" in str(w.message) or "serializ" in str(w.message)]


def test_connection_refused_is_ungraded(grader_home: Path) -> None:
    with LoopbackOpenAIServer() as server:
        base_url = server.base_url
    grade = LLMGrader(Settings(base_url=base_url, api_key=KEY, max_retries=0), grader_home).grade(
        CARD, "a"
    )
    assert grade.verdict == "ungraded"
    assert grade.reason == f"cannot connect to the LLM endpoint {base_url} (0 retries)"


def test_401_never_leaks_the_key(grader_for: GraderFor) -> None:
    with LoopbackOpenAIServer([Reply.error(401, f"Incorrect API key provided: {KEY}")]) as s:
        grade = grader_for(s).grade(CARD, "a")
        auth = s.received[0].headers["authorization"]
    assert auth == f"Bearer {KEY}"
    assert grade.verdict == "ungraded"
    assert grade.reason is not None and "rejected the API key" in grade.reason
    assert KEY not in grade.model_dump_json()


def test_calls_are_logged_and_identical_requests_cached(
    grader_home: Path, grader_for: GraderFor
) -> None:
    with LoopbackOpenAIServer(responder=lambda body: reply_for(body, GOOD)) as server:
        first = grader_for(server).grade(CARD, "same answer")
        # Concurrency, retry and timeout settings are not part of the cache key.
        second = grader_for(server, max_connections=1, max_retries=0, timeout=5).grade(
            CARD, "same answer"
        )
        assert len(server.requests) == 1, "the second identical call made no HTTP request"
        grader_for(server).grade(CARD, "another answer")
        grader_for(server, model="other-model").grade(CARD, "same answer")
        assert len(server.requests) == 3
    assert not first.evidence.cached
    assert second.evidence.cached and second.evidence.attempts == 0
    assert second.model_dump(exclude={"evidence"}) == first.model_dump(exclude={"evidence"})
    rows = CallLog(grader_home).recent()
    assert len(rows) == 4
    newest_first = [(r["cached"], r["attempts"], r["model"]) for r in rows]
    assert newest_first == [(0, 1, "other-model"), (0, 1, "m"), (1, 0, "m"), (0, 1, "m")]
    logged = rows[-1]
    assert logged["prompt_hash"] == first.evidence.prompt_hash
    assert "same answer" in logged["request"]
    assert '"completions"' in logged["response"]
    assert logged["prompt_tokens"] == 10 and logged["latency_ms"] > 0
    assert KEY.encode() not in (grader_home / DB_NAME).read_bytes()


def test_failures_are_logged_but_never_cached(grader_home: Path, grader_for: GraderFor) -> None:
    with LoopbackOpenAIServer(
        [Reply.error(400, "bad request"), Reply.tool_call("GradeResponse", GOOD)]
    ) as server:
        failed = grader_for(server).grade(CARD, "a")
        ok = grader_for(server).grade(CARD, "a")
        sent = len(server.requests)
    assert failed.verdict == "ungraded" and ok.verdict == "correct"
    assert sent == 2
    rows = CallLog(grader_home).recent()
    assert rows[1]["error"] is not None and "HTTP 400" in rows[1]["error"]


def test_no_log_writes_no_call_rows(grader_home: Path, grader_for: GraderFor) -> None:
    with LoopbackOpenAIServer(responder=lambda body: reply_for(body, GOOD)) as server:
        grader_for(server, log=False).grade(CARD, "a")
        grader_for(server, log=False, cache=False).grade(CARD, "a")
        assert len(server.requests) == 2
    assert CallLog(grader_home).count_calls() == 0


def test_async_grades_share_one_connection_limit(grader_for: GraderFor) -> None:
    slow = InFlight(lambda body: reply_for(body, GOOD), hold=0.1)
    with LoopbackOpenAIServer(responder=slow) as server:
        grader = grader_for(server, max_connections=2)
        grades = grade_all_async(grader, [(CARD, f"answer {i}") for i in range(6)])
        assert len(server.requests) == 6
    assert [g.verdict for g in grades] == ["correct"] * 6
    assert slow.peak == 2


def test_a_request_waiting_for_a_connection_is_sent_before_the_reply_that_freed_it_validates(
    grader_home: Path,
) -> None:
    # One connection, two calls: the second request waits for the first's slot. The first
    # reply's validator blocks the event loop until the server holds the second request, so it
    # only sees it if that request was written before the reply was parsed.
    server_saw_second: list[bool] = []

    class Answer(BaseModel):
        text: str

        @model_validator(mode="after")
        def second_request_already_sent(self) -> Answer:
            if not server_saw_second:
                server_saw_second.append(wait_until(lambda: len(server.requests) == 2, 2.0))
            return self

    settings = Settings(base_url="http://127.0.0.1:9/v1", api_key=KEY, model="m")
    with LoopbackOpenAIServer(
        responder=lambda body: Reply.tool_call("Answer", {"text": "x"})
    ) as server:
        client = LLMClient(
            settings.model_copy(update={"base_url": server.base_url, "max_connections": 1}),
            grader_home,
        )

        async def two_calls() -> list[Any]:
            try:
                messages = [[{"role": "user", "content": f"question {i}"}] for i in range(2)]
                return await asyncio.gather(
                    *(
                        client.astructured(Answer, m, prompt_hash=None, purpose="t")
                        for m in messages
                    )
                )
            finally:
                await client.aclose()

        results = asyncio.run(two_calls())
        client.close()
    assert [r.value.text for r in results] == ["x", "x"]
    assert server_saw_second == [True]


def test_a_retry_backing_off_leaves_its_connection_to_a_waiting_request(
    grader_for: GraderFor,
) -> None:
    # One connection, two grades: the first is told to retry in 0.4 s. The second grade's
    # request goes out during that back-off, not after the first grade's retry is answered.
    limited = Reply.error(429, "slow down", headers={"retry-after-ms": "400"})
    good = Reply.tool_call("GradeResponse", GOOD)
    with LoopbackOpenAIServer([limited, good, good]) as server:
        grader = grader_for(server, max_connections=1, max_retries=1, cache=False)
        grades = grade_all_async(grader, [(CARD, "first answer"), (CARD, "second answer")])
        answers = [json.dumps(r["messages"]) for r in server.requests]
    assert [g.verdict for g in grades] == ["correct", "correct"]
    first, second = ("first answer" in a for a in answers[:2])
    assert len(answers) == 3 and first != second, answers


def test_latency_leaves_out_the_wait_for_a_connection(grader_for: GraderFor) -> None:
    # One connection, three grades each held 0.3 s by the server: the last waits 0.6 s for the
    # connection, which is queueing, not the endpoint's latency or ours.
    slow = InFlight(lambda body: reply_for(body, GOOD), hold=0.3)
    with LoopbackOpenAIServer(responder=slow) as server:
        grader = grader_for(server, max_connections=1, cache=False)
        grade_all_async(grader, [(CARD, "warm-up")])  # the first call's one-time set-up
        grades = grade_all_async(grader, [(CARD, f"answer {i}") for i in range(3)])
    assert [g.verdict for g in grades] == ["correct"] * 3 and slow.peak == 1
    latencies = sorted(g.evidence.latency_ms for g in grades)
    assert latencies[0] >= 300
    assert latencies[-1] < 600, latencies  # with the wait it would be 900 or more


def test_many_connections_opened_at_once_are_all_answered(grader_for: GraderFor) -> None:
    # An eval opens `max_connections` connections at once; the loopback server's listen backlog
    # must take them all (the stdlib default of 5 dropped some, costing retries or failures).
    with LoopbackOpenAIServer(responder=lambda body: reply_for(body, GOOD), delay=0.05) as server:
        grader = grader_for(server, max_connections=64, max_retries=0, cache=False)
        grades = grade_all_async(grader, [(CARD, f"answer {i}") for i in range(64)])
        assert len(server.requests) == 64
    assert [g.reason for g in grades if not g.graded] == []


def test_async_works_across_event_loops(grader_for: GraderFor) -> None:
    with LoopbackOpenAIServer(responder=lambda body: reply_for(body, GOOD)) as server:
        grader = grader_for(server, cache=False)

        async def once() -> str:
            grade = await grader.agrade(CARD, "a")
            await grader.aclose()
            return grade.verdict

        for _ in range(2):
            assert asyncio.run(once()) == "correct"


def test_grade_many_threads_in_order(grader_for: GraderFor) -> None:
    def by_answer(body: dict[str, Any]) -> Reply:
        text = body["messages"][1]["content"]
        payload = (
            GOOD
            if "good" in text
            else {
                **GOOD,
                "key_points": [{**p, "status": "missed"} for p in GOOD["key_points"]],
                "score": 0.0,
                "verdict": "incorrect",
            }
        )
        return reply_for(body, payload)

    with LoopbackOpenAIServer(responder=by_answer) as server:
        grader = grader_for(server, max_connections=3)
        grades = grader.grade_many([(CARD, "good"), (CARD, "bad"), (CARD, "good 2"), (CARD, "x")])
    assert [g.verdict for g in grades] == ["correct", "incorrect", "correct", "incorrect"]


def test_adapter_generic_structured_call(grader_home: Path) -> None:
    from pydantic import BaseModel

    class Capital(BaseModel):
        city: str

    settings = Settings(base_url="", api_key=KEY)
    with LoopbackOpenAIServer([Reply.tool_call("Capital", {"city": "Paris"})]) as server:
        client = LLMClient(settings.model_copy(update={"base_url": server.base_url}), grader_home)
        result = client.structured(
            Capital,
            [{"role": "user", "content": "Capital of France?"}],
            prompt_hash=None,
            purpose="test",
        )
    assert result.value.city == "Paris"
    assert result.attempts == 1 and not result.cached


def test_learner_text_is_never_templated(grader_for: GraderFor) -> None:
    """instructor renders messages as Jinja when given `context=`; we never give it one."""
    answer = "{{ rubric }} {% for x in range(3) %}{{ x }}{% endfor %} {{ 7 * 7 }}"
    with LoopbackOpenAIServer(responder=lambda body: reply_for(body, GOOD)) as server:
        grade = grader_for(server).grade(CARD, answer)
        user = server.requests[0]["messages"][1]["content"]
    assert grade.verdict == "correct"
    assert answer in user
    assert "49" not in user
