"""A loopback OpenAI-compatible HTTP server for tests and benchmarks (stdlib only).

It speaks the chat-completions wire format on 127.0.0.1, so the real `openai` + `instructor` stack
can be exercised over real HTTP without any network. Replies are scripted (a queue) or computed (a
`responder`); every request body is recorded in `server.requests`.

    with LoopbackOpenAIServer(replies=[Reply.tool_call("Answer", {"x": 1})]) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

DEFAULT_MODEL = "loopback-model"


@dataclass
class Reply:
    """One scripted HTTP reply. Build it with the class methods."""

    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds to wait before answering (a 'hang' when longer than the client's timeout)."""

    @classmethod
    def content(
        cls,
        content: str | dict[str, Any] | list[Any],
        *,
        prompt_tokens: int = 10,
        completion_tokens: int = 5,
        model: str = DEFAULT_MODEL,
    ) -> Reply:
        """An assistant message whose content is `content` (dicts/lists are sent as JSON text)."""
        text = content if isinstance(content, str) else json.dumps(content)
        message = {"role": "assistant", "content": text}
        return cls(body=_completion(message, "stop", prompt_tokens, completion_tokens, model))

    @classmethod
    def tool_call(
        cls,
        name: str,
        arguments: dict[str, Any] | str,
        *,
        prompt_tokens: int = 10,
        completion_tokens: int = 5,
        model: str = DEFAULT_MODEL,
    ) -> Reply:
        """An assistant message calling tool `name` with `arguments` (a dict, or raw JSON text)."""
        args = arguments if isinstance(arguments, str) else json.dumps(arguments)
        message = {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_loopback",
                    "type": "function",
                    "function": {"name": name, "arguments": args},
                }
            ],
        }
        return cls(body=_completion(message, "tool_calls", prompt_tokens, completion_tokens, model))

    @classmethod
    def error(
        cls, status: int, message: str = "error", *, headers: dict[str, str] | None = None
    ) -> Reply:
        """An HTTP error in OpenAI's error shape, e.g. `Reply.error(429, headers={...})`."""
        body = {"error": {"message": message, "type": "loopback_error", "code": str(status)}}
        return cls(status=status, body=body, headers=dict(headers or {}))

    @classmethod
    def hang(cls, seconds: float = 30.0) -> Reply:
        """No answer for `seconds` (the server gives up early when it is closed)."""
        return cls(status=504, body={"error": {"message": "hung"}}, delay=seconds)

    def with_delay(self, seconds: float) -> Reply:
        self.delay = seconds
        return self


def _completion(
    message: dict[str, Any],
    finish_reason: str,
    prompt_tokens: int,
    completion_tokens: int,
    model: str,
) -> dict[str, Any]:
    return {
        "id": "chatcmpl-loopback",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


Responder = Callable[[dict[str, Any]], "Reply | dict[str, Any]"]
"""Computes a reply from a request body; a plain dict is sent as a 200 JSON body."""


@dataclass
class RecordedRequest:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None


class LoopbackOpenAIServer:
    """A threaded HTTP server on 127.0.0.1 answering `POST .../chat/completions`.

    Replies come from the `replies` queue first, then from `responder`; with neither, the server
    answers 500 "no scripted reply". `delay` is added before every reply.
    """

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        responder: Responder | None = None,
        delay: float = 0.0,
    ) -> None:
        self.replies: deque[Reply] = deque(replies)
        self.responder = responder
        self.delay = delay
        self.received: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LoopbackOpenAIServer:
        handler = _make_handler(self)
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> LoopbackOpenAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- what tests look at ------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("server is not running")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (ends in `/v1`)."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """JSON bodies of the chat-completion requests received, in order."""
        with self._lock:
            return [
                r.body
                for r in self.received
                if r.body is not None and r.path.endswith("/chat/completions")
            ]

    def queue(self, *replies: Reply) -> None:
        with self._lock:
            self.replies.extend(replies)

    # -- dispatch ----------------------------------------------------------------------------

    def handle(self, request: RecordedRequest) -> Reply:
        """Route one request to its reply. Other endpoints (files, batches) extend this."""
        with self._lock:
            self.received.append(request)
        if request.method == "POST" and request.path.endswith("/chat/completions"):
            return self._chat_reply(request)
        return Reply.error(404, f"no route for {request.method} {request.path}")

    def _chat_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            scripted = self.replies.popleft() if self.replies else None
        if scripted is not None:
            return scripted
        if self.responder is not None:
            computed = self.responder(request.body or {})
            return computed if isinstance(computed, Reply) else Reply(body=computed)
        return Reply.error(500, "no scripted reply")

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, returning early when the server closes."""
        if seconds > 0:
            self._closing.wait(seconds)


def _make_handler(server: LoopbackOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            """Silence the default stderr access log."""

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: dict[str, Any] | None
            try:
                parsed = json.loads(raw) if raw else None
                body = parsed if isinstance(parsed, dict) else None
            except ValueError:
                body = None
            request = RecordedRequest(
                method=self.command,
                path=self.path.split("?", 1)[0],
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            reply = server.handle(request)
            server.wait(server.delay + reply.delay)
            payload = json.dumps(reply.body if reply.body is not None else {}).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test); nothing to answer

        do_POST = _serve
        do_GET = _serve
        do_DELETE = _serve

    return Handler


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll `predicate` until it holds or `timeout` passes (helper for concurrency tests)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()
