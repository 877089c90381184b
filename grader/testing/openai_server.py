"""A loopback OpenAI-compatible HTTP server for tests and benchmarks (stdlib only).

It speaks the chat-completions wire format on 127.0.0.1, so the real `openai` + `instructor` stack
can be exercised over real HTTP without any network. Replies are scripted (a queue) or computed (a
`responder`); every request body is recorded in `server.requests`.

    with LoopbackOpenAIServer(replies=[Reply.tool_call("Answer", {"x": 1})]) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="test")
"""

from __future__ import annotations

import json
import sys
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
    raw: bytes | None = None
    """A non-JSON payload (file content), sent instead of `body`."""

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
    raw: bytes = b""
    """The request bytes as received (multipart uploads are not JSON)."""


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    """Listen backlog. With the stdlib default of 5, a client opening many connections at once
    (an eval starting with `max_connections` 32) had some of them reset or stalled: each cost a
    transport retry after openai's backoff (0.5-1.7 s in the eval benchmark), or an ungraded
    response with retries off."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-request (a killed grading worker, a timed-out test) is
        # part of what the tests exercise, not a server fault worth a traceback on stderr.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class LoopbackOpenAIServer:
    """A threaded HTTP server on 127.0.0.1 answering `POST .../chat/completions`.

    Replies come from the `replies` queue first, then from `responder`; with neither, the server
    answers 500 "no scripted reply". `delay` is added before every reply. `port` 0 picks a free
    port; a fixed one gives a stable base URL (for recording cassettes).
    """

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        *,
        responder: Responder | None = None,
        delay: float = 0.0,
        port: int = 0,
    ) -> None:
        self.replies: deque[Reply] = deque(replies)
        self._port = port
        self.responder = responder
        self.delay = delay
        self.received: list[RecordedRequest] = []
        self.files: dict[str, bytes] = {}
        """Uploaded and generated files (OpenAI Files API), by id."""
        self.batches: dict[str, dict[str, Any]] = {}
        """Batch objects (OpenAI Batch API), by id."""
        self.batch_polls_to_complete = 2
        self.batch_requests: list[dict[str, Any]] = []
        """Request bodies answered inside batches (not counted in `requests`)."""
        """Status polls a batch stays `validating`/`in_progress` before it completes."""
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> LoopbackOpenAIServer:
        handler = _make_handler(self)
        self._httpd = _Server(("127.0.0.1", self._port), handler)
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
        files_or_batches = self._files_and_batches(request)
        if files_or_batches is not None:
            return files_or_batches
        return Reply.error(404, f"no route for {request.method} {request.path}")

    # -- files and batches (OpenAI Batch API) -------------------------------------------------

    def _files_and_batches(self, request: RecordedRequest) -> Reply | None:
        parts = request.path.rstrip("/").split("/")
        if "files" in parts:
            rest = parts[parts.index("files") + 1 :]
            if request.method == "POST" and not rest:
                return self._upload(request)
            if request.method == "GET" and len(rest) == 2 and rest[1] == "content":
                with self._lock:
                    content = self.files.get(rest[0])
                if content is None:
                    return Reply.error(404, f"no file {rest[0]}")
                return Reply(raw=content, headers={"Content-Type": "application/jsonl"})
        if "batches" in parts:
            rest = parts[parts.index("batches") + 1 :]
            if request.method == "POST" and not rest:
                return self._create_batch(request.body or {})
            if request.method == "GET" and len(rest) == 1:
                return self._poll_batch(rest[0])
            if request.method == "POST" and len(rest) == 2 and rest[1] == "cancel":
                with self._lock:
                    batch = self.batches.get(rest[0])
                    if batch is not None:
                        batch["status"] = "cancelled"
                return Reply(body=batch) if batch else Reply.error(404, f"no batch {rest[0]}")
        return None

    def _upload(self, request: RecordedRequest) -> Reply:
        from email import policy
        from email.parser import BytesParser

        content_type = request.headers.get("content-type", "")
        message = BytesParser(policy=policy.default).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + request.raw
        )
        fields: dict[str, bytes] = {}
        filename = "upload.jsonl"
        for part in message.iter_parts() if message.is_multipart() else []:
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                fields[name] = payload
                filename = str(part.get_filename() or filename)
        if "file" not in fields:
            return Reply.error(400, "multipart field 'file' is required")
        with self._lock:
            file_id = f"file-{len(self.files) + 1}"
            self.files[file_id] = fields["file"]
        return Reply(body=_file_object(file_id, filename, fields["file"], "batch"))

    def _create_batch(self, body: dict[str, Any]) -> Reply:
        input_id = str(body.get("input_file_id", ""))
        with self._lock:
            if input_id not in self.files:
                return Reply.error(400, f"no input file {input_id!r}")
            batch_id = f"batch_{len(self.batches) + 1}"
            batch = {
                "id": batch_id,
                "object": "batch",
                "endpoint": body.get("endpoint", "/v1/chat/completions"),
                "input_file_id": input_id,
                "completion_window": body.get("completion_window", "24h"),
                "status": "validating",
                "output_file_id": None,
                "error_file_id": None,
                "created_at": 1_700_000_000,
                "request_counts": {"total": 0, "completed": 0, "failed": 0},
                "polls": 0,
            }
            self.batches[batch_id] = batch
        return Reply(body=_public(batch))

    def _poll_batch(self, batch_id: str) -> Reply:
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None:
                return Reply.error(404, f"no batch {batch_id}")
            batch["polls"] += 1
            ready = batch["status"] in ("validating", "in_progress") and (
                batch["polls"] >= self.batch_polls_to_complete
            )
            if not ready and batch["status"] == "validating":
                batch["status"] = "in_progress"
            lines = self.files[batch["input_file_id"]].decode().splitlines() if ready else []
        if ready:
            self._run_batch(batch, lines)
        with self._lock:
            return Reply(body=_public(batch))

    def _run_batch(self, batch: dict[str, Any], lines: list[str]) -> None:
        """Answer every request line through the same queue/responder as live calls."""
        outputs: list[str] = []
        errors: list[str] = []
        completed = failed = 0
        for index, line in enumerate(x for x in lines if x.strip()):
            item = json.loads(line)
            request = RecordedRequest(
                method="POST", path=str(item.get("url", "")), headers={}, body=item.get("body")
            )
            reply = self._chat_reply(request)
            with self._lock:
                self.batch_requests.append(item.get("body") or {})
            record = {
                "id": f"batch_req_{index + 1}",
                "custom_id": item.get("custom_id"),
                "response": {
                    "status_code": reply.status,
                    "request_id": f"req_{index + 1}",
                    "body": reply.body,
                },
                "error": None,
            }
            if reply.status == 200:
                completed += 1
                outputs.append(json.dumps(record))
            else:
                failed += 1
                errors.append(json.dumps(record))
        with self._lock:
            out_id = f"file-{len(self.files) + 1}"
            self.files[out_id] = ("\n".join(outputs) + "\n").encode() if outputs else b""
            batch["output_file_id"] = out_id
            if errors:
                err_id = f"file-{len(self.files) + 1}"
                self.files[err_id] = ("\n".join(errors) + "\n").encode()
                batch["error_file_id"] = err_id
            batch["request_counts"] = {
                "total": completed + failed,
                "completed": completed,
                "failed": failed,
            }
            batch["status"] = "completed"

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


def _file_object(file_id: str, filename: str, content: bytes, purpose: str) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": len(content),
        "created_at": 1_700_000_000,
        "filename": filename,
        "purpose": purpose,
        "status": "processed",
    }


def _public(batch: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if k != "polls"}


def _make_handler(server: LoopbackOpenAIServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes; with Nagle on, the body waits for the
        # client's delayed ACK (~40 ms per request on Linux), which swamps latency benchmarks.
        disable_nagle_algorithm = True

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
                raw=raw,
            )
            reply = server.handle(request)
            server.wait(server.delay + reply.delay)
            if reply.raw is not None:
                payload = reply.raw
            else:
                payload = json.dumps(reply.body if reply.body is not None else {}).encode()
            try:
                self.send_response(reply.status)
                if "Content-Type" not in reply.headers:
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


class InFlight:
    """A responder wrapper that holds each request `hold` seconds and records the most requests
    the server was answering at once (`peak`): concurrency-limit tests assert on it."""

    def __init__(self, responder: Responder, hold: float) -> None:
        self.responder = responder
        self.hold = hold
        self.now = 0
        self.peak = 0
        self._lock = threading.Lock()

    def __call__(self, body: dict[str, Any]) -> Reply | dict[str, Any]:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        time.sleep(self.hold)
        with self._lock:
            self.now -= 1
        return self.responder(body)
