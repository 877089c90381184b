"""The one-line reason of an ungraded grade, for replies an endpoint (or what stands before it)
gets wrong: the real openai + instructor stack over real HTTP against the loopback server."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from grader.graders.llm import LLMGrader
from grader.models import Card, Grade
from grader.settings import InstructorMode, Settings
from grader.testing.openai_server import LoopbackOpenAIServer, Reply

KEY = "sk-reason-test-key"
CARD = Card(id="c1", question="Name the three phases of MLOps.", answer="Design, dev, ops")
PROXY = "(an HTML page: a proxy or gateway between you and the endpoint?)"
GATEWAY_PAGE = (
    b"<html>\r\n<head><title>503 Service Unavailable</title></head>\r\n<body>\r\n"
    b"<center><h1>503 Service Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)
NO_CHOICES: dict[str, Any] = {
    "id": "chatcmpl-empty",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": "m",
    "choices": [],
}


TEXT_HTML = {"Content-Type": "text/html"}


def html(status: int, page: bytes) -> Reply:
    return Reply(status=status, raw=page, headers=TEXT_HTML)


def ungraded(
    replies: list[Reply], grader_home: Path, mode: InstructorMode = "tools", **overrides: Any
) -> tuple[str, str]:
    """The reason a grade against a server sending `replies` was ungraded, and the base URL."""
    options: dict[str, Any] = {"api_key": KEY, "model": "m", "mode": mode, "max_retries": 0}
    options.update(overrides)
    with LoopbackOpenAIServer(replies) as server:
        base_url = server.base_url
        grader = LLMGrader(Settings(base_url=base_url, **options), grader_home)
        try:
            grade = grader.grade(CARD, "design, dev, some ops")
        finally:
            grader.close()
    return checked(grade), base_url


def checked(grade: Grade) -> str:
    """The grade's reason, checked to be one line without the API key."""
    assert grade.verdict == "ungraded" and grade.score is None
    assert grade.reason is not None
    assert "\n" not in grade.reason and "\r" not in grade.reason
    assert KEY not in grade.reason and KEY not in grade.model_dump_json()
    return grade.reason


# -- 1. HTTP 429 keeps the server's message -------------------------------------------------------


def test_an_exhausted_quota_says_so(grader_home: Path) -> None:
    """OpenAI answers 429 for an exhausted quota too, where waiting never helps."""
    quota = Reply.error(
        429,
        "You exceeded your current quota, please check your plan and billing details.",
        headers={"retry-after-ms": "10"},
    )
    reason, base_url = ungraded([quota] * 3, grader_home, max_retries=2)
    assert reason == (
        f"rate limited by {base_url} (HTTP 429) after 2 retries: You exceeded your current "
        "quota, please check your plan and billing details."
    )


def test_a_429_message_echoing_the_key_is_redacted(grader_home: Path) -> None:
    limited = Reply.error(429, f"Rate limit reached for key {KEY} on requests per min")
    reason, base_url = ungraded([limited], grader_home)
    assert reason == (
        f"rate limited by {base_url} (HTTP 429) after 0 retries: Rate limit reached for key *** "
        "on requests per min"
    )


# -- 2. an HTML error page is told by its title ---------------------------------------------------


def test_a_gateways_html_503_page_gives_its_title(grader_home: Path) -> None:
    reason, base_url = ungraded([html(503, GATEWAY_PAGE)], grader_home)
    assert reason == f"HTTP 503 from {base_url}: 503 Service Unavailable {PROXY}"


def test_an_html_page_without_a_title(grader_home: Path) -> None:
    page = b"<!DOCTYPE html>\n<html><body><p>Bad gateway</p></body></html>"
    reason, base_url = ungraded([html(502, page)], grader_home)
    assert reason == (
        f"HTTP 502 from {base_url}: an HTML page (a proxy or gateway between you and the endpoint?)"
    )


def test_an_html_title_is_unescaped_redacted_and_bounded(grader_home: Path) -> None:
    title = f"Access denied &amp; logged: {KEY} " + "x" * 400
    page = f"<html><head>\n<title>\n  {title}\n</title></head></html>".encode()
    reason, base_url = ungraded([html(403, page)], grader_home)
    shown = f"Access denied & logged: *** {'x' * 400}"[:120]
    assert reason == f"HTTP 403 from {base_url}: {shown} {PROXY}"


def test_a_plain_text_5xx_is_still_quoted(grader_home: Path) -> None:
    text = Reply(
        status=500, raw=b"upstream crashed\nstack...", headers={"Content-Type": "text/plain"}
    )
    reason, base_url = ungraded([text], grader_home)
    assert reason == f"HTTP 500 from {base_url}: upstream crashed"


# -- 3. a 200 reply that is not JSON blames the reply, not the model ------------------------------


@pytest.mark.parametrize("mode", ["tools", "json", "md_json"])
def test_a_200_body_that_is_not_json(grader_home: Path, mode: InstructorMode) -> None:
    garbage = Reply(status=200, raw=b"not json at all")  # labelled application/json
    reason, base_url = ungraded([garbage] * 3, grader_home, mode=mode)
    assert reason == (
        f"the reply from {base_url} was not valid JSON: Expecting value: line 1 "
        "column 1 (char 0); the body began 'not json at all'"
    )


def test_a_200_body_cut_short(grader_home: Path) -> None:
    cut = Reply(status=200, raw=b'{"id": "chatcmpl-1", "choices": [{"index": 0, "mess')
    reason, base_url = ungraded([cut] * 3, grader_home)
    assert reason == (
        f"the reply from {base_url} was not valid JSON: Unterminated string starting "
        """at: line 1 column 47 (char 46); the body began '{"id": "chatcmpl-1", "choices": """
        """[{"index": 0, "mess'"""
    )


def test_an_empty_200_body(grader_home: Path) -> None:
    reason, base_url = ungraded([Reply(status=200, raw=b"")] * 3, grader_home)
    assert reason == f"the reply from {base_url} was not valid JSON: the body was empty"


def test_a_200_html_page_from_a_proxy(grader_home: Path) -> None:
    """A sign-in page from a proxy comes as text/html, which openai hands over as text."""
    page = b"<html><head><title>Sign in</title></head><body>SSO</body></html>"
    reason, base_url = ungraded([html(200, page)] * 3, grader_home)
    assert reason == f"the reply from {base_url} was not valid JSON: Sign in {PROXY}"


def test_a_200_text_body_echoing_the_key_is_redacted(grader_home: Path) -> None:
    text = Reply(status=200, raw=f"bad key {KEY}".encode(), headers={"Content-Type": "text/plain"})
    reason, base_url = ungraded([text] * 3, grader_home)
    assert reason == (
        f"the reply from {base_url} was not valid JSON: Expecting value: line 1 column 1 "
        "(char 0); the body began 'bad key ***'"
    )


@pytest.mark.parametrize(
    ("mode", "hint"),
    [
        ("tools", ""),
        ("json", "; if the model wraps its JSON in text or a code fence, try mode md_json"),
    ],
)
def test_a_model_whose_output_is_not_json_is_still_blamed(
    grader_home: Path, mode: InstructorMode, hint: str
) -> None:
    """Only the endpoint's own body changed wording; the model's tool-call arguments or content
    that are not JSON remain the model's output."""
    if mode == "tools":
        reply = Reply.tool_call("GradeResponse", "{not json")
    else:
        reply = Reply.content("{not json")
    reason, _ = ungraded([reply] * 2, grader_home, mode=mode, max_reasks=1)
    assert reason == (
        "the model's output never validated after 2 attempts: output: Invalid JSON: key must be "
        "a string at line 1 column 2" + hint
    )


# -- 4. a reply without choices ------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["tools", "json", "md_json"])
def test_a_reply_with_no_choices(grader_home: Path, mode: InstructorMode) -> None:
    reason, base_url = ungraded([Reply(body=NO_CHOICES)], grader_home, mode=mode)
    assert reason == f"the reply from {base_url} had no choices"


def test_a_200_error_body_without_choices_gives_the_error(grader_home: Path) -> None:
    """OpenRouter reports an upstream failure as `{"error": ...}` at HTTP 200."""
    body = {"error": {"message": f"Provider returned error for {KEY}", "code": 502}}
    reason, base_url = ungraded([Reply(body=body)], grader_home)
    assert reason == f"the reply from {base_url} had no choices: Provider returned error for ***"


def one_grade(
    grader_home: Path, reply: Reply, *, run_async: bool = False, key: str = KEY
) -> tuple[Grade, int, str]:
    """A grade against a server answering every request with `reply`: the grade, how many
    requests reached the server, and its base URL."""
    with LoopbackOpenAIServer(responder=lambda _: reply) as server:
        settings = Settings(base_url=server.base_url, api_key=key, model="m", max_retries=0)
        grader = LLMGrader(settings, grader_home)
        try:
            grade = asyncio.run(agrade(grader)) if run_async else grader.grade(CARD, "design")
        finally:
            grader.close()
        return grade, len(server.requests), server.base_url


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"42", "the body was 42"),
        (b"null", "the body was null"),
        (b'[{"choices": []}]', 'the body was [{"choices": []}]'),
        (b'{"choices": 5}', "its choices were 5"),
        (b'{"choices": [1]}', "its choices were [1]"),
    ],
)
@pytest.mark.parametrize("run_async", [False, True], ids=["sync", "async"])
def test_json_that_is_not_a_chat_completion_is_the_replys_fault_and_not_re_asked(
    grader_home: Path, body: bytes, detail: str, run_async: bool
) -> None:
    """instructor called these the model's output and re-asked twice."""
    grade, sent, base_url = one_grade(grader_home, Reply(raw=body), run_async=run_async)
    assert checked(grade) == f"the reply from {base_url} was not a chat completion: {detail}"
    assert sent == 1


@pytest.mark.parametrize(
    "reply",
    [
        Reply(status=200, raw=b"not json at all"),  # labelled application/json
        Reply(status=200, raw=b"<html><title>Sign in</title></html>", headers=TEXT_HTML),
    ],
    ids=["labelled-json", "html"],
)
@pytest.mark.parametrize("run_async", [False, True], ids=["sync", "async"])
def test_a_reply_that_is_not_json_is_not_sent_again(
    grader_home: Path, reply: Reply, run_async: bool
) -> None:
    """instructor counted it as a parse error and sent the request twice more."""
    grade, sent, base_url = one_grade(grader_home, reply, run_async=run_async)
    assert checked(grade).startswith(f"the reply from {base_url} was not valid JSON: ")
    assert sent == 1


@pytest.mark.parametrize(
    "body",
    ['[{{"key": "{key}"}}]', '{{"choices": {{"x": "auth {key}"}}}}'],
    ids=["body", "choices"],
)
def test_a_long_key_in_a_reply_that_is_not_a_completion_is_redacted_before_the_cut(
    grader_home: Path, body: str
) -> None:
    """The reason quotes 60 characters of the reply; a key running past them must not leave its
    start behind (a project key is about 160 characters)."""
    key = "sk-proj-" + "A1b2C3d4E5" * 15
    grade, _, _ = one_grade(grader_home, Reply(raw=body.format(key=key).encode()), key=key)
    assert grade.reason is not None and "was not a chat completion" in grade.reason
    assert "A1b2C3d4E5" not in grade.reason and "***" in grade.reason


async def agrade(grader: LLMGrader) -> Grade:
    try:
        return await grader.agrade(CARD, "design")
    finally:
        await grader.aclose()


# -- the async path gives the same reasons ------------------------------------------------------


def test_async_grades_give_the_same_reasons(grader_home: Path) -> None:
    replies = {
        "case-no-choices": Reply(body=NO_CHOICES),
        "case-not-json": Reply(status=200, raw=b"not json at all"),
        "case-html": html(503, GATEWAY_PAGE),
        "case-quota": Reply.error(429, "You exceeded your current quota"),
    }

    def by_answer(body: dict[str, Any]) -> Reply:
        text = body["messages"][1]["content"]
        return next(reply for word, reply in replies.items() if word in text)

    with LoopbackOpenAIServer(responder=by_answer) as server:
        settings = Settings(base_url=server.base_url, api_key=KEY, model="m", max_retries=0)
        grader = LLMGrader(settings, grader_home)

        async def run() -> list[Grade]:
            try:
                return await grader.agrade_many([(CARD, f"answer {word}") for word in replies])
            finally:
                await grader.aclose()

        grades = asyncio.run(run())
        grader.close()
        base_url = server.base_url
    assert [checked(g) for g in grades] == [
        f"the reply from {base_url} had no choices",
        f"the reply from {base_url} was not valid JSON: Expecting value: line 1 "
        "column 1 (char 0); the body began 'not json at all'",
        f"HTTP 503 from {base_url}: 503 Service Unavailable {PROXY}",
        f"rate limited by {base_url} (HTTP 429) after 0 retries: You exceeded your current quota",
    ]


@pytest.mark.parametrize("partial", [False, True], ids=["no reply", "reset mid-reply"])
def test_an_endpoint_that_hangs_up_is_not_called_unreachable(
    grader_home: Path, partial: bool
) -> None:
    import socket
    import struct
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"

    def hang_up() -> None:  # read each request, then close: at once, or after part of a reply
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                if partial:
                    conn.sendall(head)
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    threading.Thread(target=hang_up, daemon=True).start()
    base_url = f"http://127.0.0.1:{port}/v1"
    settings = Settings(base_url=base_url, api_key=KEY, model="m", max_retries=1)
    grader = LLMGrader(settings, grader_home)
    try:
        grade = grader.grade(CARD, "design, dev, some ops")
    finally:
        grader.close()
        listener.close()
    assert checked(grade) == (
        f"the LLM endpoint {base_url} closed the connection without a complete reply (1 retries)"
    )
