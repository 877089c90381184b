"""The adapter posts chat completions without openai's params walk: the same bytes, headers and
behaviour as openai's own `chat.completions.create`, checked on the wire."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openai
import pytest
from openai.resources.chat.completions import AsyncCompletions, Completions

from grader.graders.llm import LLMGrader
from grader.llm import adapter
from grader.settings import InstructorMode, Settings
from grader.testing.openai_server import LoopbackOpenAIServer, RecordedRequest, Reply
from tests.test_llm_http import BAD, CARD, GOOD, KEY, reply_for

Sent = tuple[bytes, dict[str, str]]


def counting(calls: list[str], name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return method(*args, **kwargs)

    return wrapper


def sent(requests: list[RecordedRequest]) -> list[Sent]:
    """What reached the server for each chat completion: body bytes, and every header but
    `host` (each run has its own server port)."""
    return [
        (r.raw, {name: value for name, value in r.headers.items() if name != "host"})
        for r in requests
        if r.path.endswith("/chat/completions")
    ]


def grade_over_http(
    home: Path, replies: list[Reply], mode: InstructorMode, run_async: bool
) -> tuple[list[Sent], str]:
    with LoopbackOpenAIServer(replies) as server:
        settings = Settings(base_url=server.base_url, api_key=KEY, model="m", mode=mode)
        grader = LLMGrader(settings, home)
        try:
            if run_async:

                async def run() -> str:
                    try:
                        return (await grader.agrade(CARD, "design, dev, ops")).verdict
                    finally:
                        await grader.aclose()

                verdict = asyncio.run(run())
            else:
                verdict = grader.grade(CARD, "design, dev, ops").verdict
        finally:
            grader.close()
        return sent(server.received), verdict


@pytest.mark.parametrize("run_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("mode", ["tools", "json", "md_json", "json_schema"])
def test_requests_are_byte_identical_to_openais_create(
    mode: InstructorMode,
    run_async: bool,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # an invalid grade then a valid one: the re-ask (the model's reply and the validation error
    # sent back) is compared too
    def replies() -> list[Reply]:
        shape = {"tools": [{"function": {"name": "GradeResponse"}}]} if mode == "tools" else {}
        if mode in ("json", "json_schema"):
            shape = {"response_format": {"type": "json_object"}}
        return [reply_for(shape, BAD), reply_for(shape, GOOD)]

    calls: list[str] = []
    for cls in (Completions, AsyncCompletions):
        monkeypatch.setattr(cls, "create", counting(calls, "create", cls.create))
    direct, direct_verdict = grade_over_http(tmp_path / "a", replies(), mode, run_async)
    assert calls == [], "the adapter posted through openai's create"

    # openai as it comes: its own create, and its own HTTP client and TLS context
    monkeypatch.setattr(adapter, "direct_create", lambda client: client.chat.completions.create)
    monkeypatch.setattr(adapter, "async_http_client", lambda slots: None)
    official, official_verdict = grade_over_http(tmp_path / "b", replies(), mode, run_async)
    assert calls == ["create", "create"]

    assert direct_verdict == official_verdict == "correct"
    assert len(direct) == len(official) == 2
    for (direct_body, direct_headers), (official_body, official_headers) in zip(
        direct, official, strict=True
    ):
        assert direct_body == official_body
        assert direct_headers == official_headers
        assert direct_headers["authorization"] == f"Bearer {KEY}"


def test_what_the_direct_path_does_not_take_goes_through_create(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(Completions, "create", counting(calls, "create", Completions.create))
    replies = [Reply.content("a"), Reply.content("b"), Reply.content("c")]
    messages = [{"role": "user", "content": "hi"}]
    with LoopbackOpenAIServer(replies) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key=KEY, max_retries=0)
        create = adapter.direct_create(client)
        create(model="m", messages=messages)
        assert calls == []
        create(model="m", messages=messages, extra_headers={"X-Trace": "7"})  # an option
        assert calls == ["create"]
        create(model="m", messages=tuple(messages))  # not plain JSON: openai's to convert
        assert calls == ["create", "create"]
        with pytest.raises(TypeError):
            create(model="m", messages=messages, not_a_parameter=1)
        received = server.received
        client.close()
    assert received[1].headers["x-trace"] == "7"
    assert [r.body for r in received] == [{"model": "m", "messages": messages}] * 3


def test_set_up_is_done_once_per_process_and_before_a_fork(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Certificates are loaded, and the response model wrapped, once per process (by `preload`,
    before grading workers fork), not by every async client: each event loop and each worker
    makes one."""
    import httpcore2

    from grader.llm.schemas import GradeResponse

    loaded: list[str] = []  # where httpx loads the certificates for its default context
    real = httpcore2.default_ssl_context
    monkeypatch.setattr(httpcore2, "default_ssl_context", counting(loaded, "tls", real))
    adapter.tls_context.cache_clear()
    adapter.instructor_model.cache_clear()
    try:
        adapter.preload(GradeResponse)
        assert loaded == ["tls"]
        assert adapter.instructor_model.cache_info().currsize == 1
        with LoopbackOpenAIServer(responder=lambda body: reply_for(body, GOOD)) as server:
            settings = Settings(base_url=server.base_url, api_key=KEY, model="m", cache=False)
            grader = LLMGrader(settings, tmp_path)

            async def once() -> str:
                try:
                    return (await grader.agrade(CARD, "a")).verdict
                finally:
                    await grader.aclose()

            assert [asyncio.run(once()) for _ in range(2)] == ["correct", "correct"]
            grader.close()
        assert loaded == ["tls"], "an async client loaded the certificates again"
        assert adapter.instructor_model.cache_info().misses == 1
    finally:
        adapter.tls_context.cache_clear()
        adapter.instructor_model.cache_clear()
