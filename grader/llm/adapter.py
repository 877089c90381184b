"""The one module that talks to `openai` and `instructor`.

`LLMClient` turns (response model, messages) into a validated pydantic value over any
OpenAI-compatible endpoint, with both retry budgets set explicitly (openai's transport retries,
instructor's validation re-asks), a SQLite call log and request cache, and failures mapped to one
`LLMError` line that never contains the API key. openai and instructor are imported lazily, on the
first call, so importing this module is cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import inspect
import json
import re
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from grader.errors import LLMError
from grader.llm.callog import CallLog, CallRecord, cache_key
from grader.llm.context import validation_context
from grader.models import Usage
from grader.settings import Settings

if TYPE_CHECKING:
    import ssl

    from instructor import AsyncInstructor, Instructor

T = TypeVar("T", bound=BaseModel)
Message = dict[str, str]


@dataclass(frozen=True)
class StructuredResult(Generic[T]):
    """A validated value and what it cost."""

    value: T
    usage: Usage
    """Tokens summed over every attempt (zero when answered from the cache)."""
    latency_ms: float
    cached: bool
    attempts: int
    """Model calls made, re-asks included (0 when cached)."""
    model: str
    base_url: str


class StructuredLLM(Protocol):
    """What graders and the expander need from an LLM; `LLMClient` and test fakes provide it."""

    @property
    def model(self) -> str: ...

    @property
    def base_url(self) -> str: ...

    def structured(
        self,
        response_model: type[T],
        messages: Sequence[Message],
        *,
        prompt_hash: str | None,
        purpose: str,
        context: dict[str, Any] | None = None,
    ) -> StructuredResult[T]:
        """Return a validated `response_model`, or raise LLMError with a one-line reason."""
        ...

    async def astructured(
        self,
        response_model: type[T],
        messages: Sequence[Message],
        *,
        prompt_hash: str | None,
        purpose: str,
        context: dict[str, Any] | None = None,
    ) -> StructuredResult[T]:
        """Async `structured`; concurrent calls share one connection limit."""
        ...

    def close(self) -> None:
        """Release sync connections."""
        ...

    async def aclose(self) -> None:
        """Release the running event loop's async connections."""
        ...


class _Attempts:
    """instructor hooks that count attempts and keep the raw completions for the log."""

    def __init__(self, keep_responses: bool) -> None:
        from instructor.core.hooks import Hooks

        self.count = 0
        self.responses: list[Any] = []
        self.hooks = Hooks()
        self.hooks.on("completion:kwargs", self._on_kwargs)
        if keep_responses:
            self.hooks.on("completion:response", self._on_response)

    def _on_kwargs(self, *args: Any, **kwargs: Any) -> None:
        self.count += 1

    def _on_response(self, response: Any) -> None:
        dump = getattr(response, "model_dump", None)
        # warnings off: a server sending tool-call arguments as an object, not a JSON string
        # (llama.cpp, Ollama), trips pydantic's serializer warnings; the dump is still whole
        self.responses.append(
            dump(mode="json", warnings=False) if callable(dump) else repr(response)
        )


def _quiet_library_loggers() -> None:
    """instructor logs every failed attempt at ERROR; we report failures ourselves, once."""
    import logging

    logger = logging.getLogger("instructor")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())
    logger.propagate = False


_BEARER_AUTH_ONLY: Any = {"security": {"bearer_auth": True}}
"""The request options openai's own `chat.completions.create` passes (no admin key)."""
_JSON_SCALARS = (str, int, float, bool, type(None))


def _plain_json(value: Any) -> bool:
    if isinstance(value, _JSON_SCALARS):
        return True
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain_json(v) for v in value)
    return False


class NotACompletion(Exception):
    """The endpoint's reply was JSON but not a chat completion (`42`, `null`, a list, a
    `choices` that is not a list of choices). instructor would call that the model's output and
    re-ask. `what` names the part (`the body`, `its choices`); `text` is it, whole: a reason
    cuts it short only after redacting the key (a cut through the key would hide it from
    redaction)."""

    def __init__(self, what: str, value: Any) -> None:
        self.what = what
        self.text = _as_json(value)
        super().__init__(f"{what}: {self.text}")


class ReplyNotJSON(Exception):
    """The endpoint's reply was not JSON (a proxy's HTML page, a body cut short), which
    instructor would count as a parse error and send again; no re-ask mends it."""

    def __init__(self, body: str, error: str | None) -> None:
        super().__init__(error or "not JSON")
        self.body = body
        self.error = error


def _a_completion(reply: Any) -> Any:
    """`reply` if it is a chat completion; else `NotACompletion`, or `ReplyNotJSON` for the
    text openai hands over when a reply is not labelled JSON."""
    from openai.types.chat import ChatCompletion

    if isinstance(reply, str):
        raise ReplyNotJSON(reply, _json_error(reply))
    if isinstance(reply, ChatCompletion):
        choices = getattr(reply, "choices", None)
        if choices is None or (
            isinstance(choices, list)
            and all(getattr(c, "message", None) is not None for c in choices)
        ):
            return reply
        raise NotACompletion("its choices were", choices)
    raise NotACompletion("the body was", reply)


def _as_json(value: Any) -> str:
    """`value` as the JSON it was read from (openai builds its models even inside a list)."""

    def plain(item: Any) -> Any:
        if isinstance(item, BaseModel):
            return item.model_dump(mode="json", exclude_unset=True, warnings=False)
        return str(item)

    return json.dumps(value, default=plain)


_SLOT_WAITS: ContextVar[list[float] | None] = ContextVar("grader_slot_waits", default=None)
"""Seconds the current call's requests spent waiting for a connection slot: queueing, which
its latency leaves out (task-local: each concurrent call has its own)."""


@contextlib.asynccontextmanager
async def _slot(slots: asyncio.Semaphore | None) -> AsyncIterator[None]:
    """Hold one of `slots` (nothing when None), noting how long it took to get it."""
    if slots is None:
        yield
        return
    asked = time.perf_counter()
    async with slots:
        waits = _SLOT_WAITS.get()
        if waits is not None:
            waits.append(time.perf_counter() - asked)
        yield


YIELDS_TO_NEXT_REQUEST = 3
"""Event-loop turns a reply gives up, after freeing its connection slot to a waiting request,
before openai parses it. The waiting request needs two (it awaits once more inside httpx before
its bytes are written; with one turn it went out only after the reply was validated); 3 leaves a
margin. At N = 32 and D = 100 ms, 3 turns against 1 gained 0.003 of ideal (0.004 steady) and at
N = 8 0.008, over 5 interleaved runs each. tests/test_llm_http.py checks that the request is on
the wire before the reply validates."""


@functools.cache
def _slotted_client_class() -> type[Any]:
    """openai's default async HTTP client class, with `send` holding a connection slot (made on
    first use: subclassing it needs openai imported)."""
    import openai

    class SlottedAsyncHttpxClient(openai.DefaultAsyncHttpxClient):
        """Each request holds one of `slots` from its sending to its reply's last byte.

        `send` gets the request built (openai's headers, the JSON body, the auth), and openai
        parses the reply only after `send` returns, so neither is inside the slot: a freed
        slot goes straight to a request that is ready. openai's retries call `send` again,
        and their back-off holds no slot; a stream holds it until its headers arrive."""

        def __init__(self, slots: asyncio.Semaphore, **options: Any) -> None:
            super().__init__(**options)
            self._slots = slots

        async def send(self, request: Any, **options: Any) -> Any:
            async with _slot(self._slots):
                response = await super().send(request, **options)
            if self._slots.locked():  # a request waits for the slot just freed
                for _ in range(YIELDS_TO_NEXT_REQUEST):
                    await asyncio.sleep(0)
            return response

    return SlottedAsyncHttpxClient


def direct_create(client: Any) -> Callable[..., Any]:
    """`client.chat.completions.create` without its per-call walk of the typed params.

    Before posting, openai's `create` runs every request through its params transform (key
    aliases, date and file formats), checking each value of the messages and the tool schema
    against its TypedDicts. A request of plain JSON values, like every one we send, comes out
    unchanged, yet the walk cost 0.5-1 ms of the 3-4 ms of CPU a grade took, the largest
    single cost when an eval's client, not the endpoint, is the limit. This posts the same body
    (same keys in the same order, so the same bytes) with the same auth through openai's
    documented `client.post`; a request with anything else (streaming, request options, a key
    `create` does not take, a value that is not plain JSON) goes through `create` itself.
    tests/test_llm_direct.py checks the bytes on the wire are identical in every mode."""
    import openai
    from openai.types.chat import ChatCompletion

    official = client.chat.completions.create
    options = {"extra_headers", "extra_query", "extra_body", "timeout"}
    order = [name for name in inspect.signature(official).parameters if name not in options]
    names = frozenset(order)

    def send(params: dict[str, Any]) -> Any:
        """The request, posted directly when it can be (a coroutine for an async client)."""
        if not (params.keys() <= names and _plain_json(params)):
            return official(**params)
        body = {name: params[name] for name in order if name in params}
        return client.post(
            "/chat/completions", cast_to=ChatCompletion, body=body, options=_BEARER_AUTH_ONLY
        )

    if isinstance(client, openai.AsyncOpenAI):

        async def acreate(**params: Any) -> Any:
            if params.get("stream"):  # a stream is create's to hand back as it is
                return await official(**params)
            with _reply_must_be_json():
                return _a_completion(await send(params))

        return acreate

    def create(**params: Any) -> Any:
        if params.get("stream"):
            return official(**params)
        with _reply_must_be_json():
            return _a_completion(send(params))

    return create


@contextlib.contextmanager
def _reply_must_be_json() -> Iterator[None]:
    """openai's JSONDecodeError on a reply labelled JSON that is not, as `ReplyNotJSON`."""
    try:
        yield
    except json.JSONDecodeError as exc:
        raise ReplyNotJSON(exc.doc, str(exc)) from exc


def structured_client(client: Any, mode_name: str) -> Any:
    """instructor over `client` (an openai client) in `mode_name`, posting through
    `direct_create`."""
    import instructor

    wrapped = instructor.from_openai(client, mode=instructor_mode(mode_name))
    wrapped.create_fn = instructor.patch(create=direct_create(client), mode=wrapped.mode)
    return wrapped


def instructor_mode(name: str) -> Any:
    """The instructor Mode for a `Settings.mode` name."""
    import instructor

    return {
        "tools": instructor.Mode.TOOLS,
        "json": instructor.Mode.JSON,
        "md_json": instructor.Mode.MD_JSON,
        "json_schema": instructor.Mode.JSON_SCHEMA,
    }[name]


def check_async_validators_once_per_model() -> None:
    """Make instructor check each response model for async validators once, not per call.

    instructor 1.17 refuses models with its async validators, and checks by walking every class
    of the model's MRO, about seven times per request: at D = 0 against a loopback server that
    was 0.95 of the 3.1 ms of client CPU per grade. The answer depends only on the model class,
    so a model that passed is remembered; a model that fails is never remembered, and raises
    every time, as before. Idempotent; does nothing if instructor no longer has the check."""
    try:
        from instructor.v2.core import patch
        from instructor.v2.validation import async_validators
    except ImportError:  # another instructor layout: leave it as it is
        return
    check = getattr(async_validators, "reject_async_validators", None)
    if check is None or getattr(check, "remembers_passed_models", False):
        return
    passed: set[Any] = set()

    def reject_async_validators(response_model: Any) -> None:
        try:
            if response_model in passed:
                return
        except TypeError:  # unhashable: check it every time
            check(response_model)
            return
        check(response_model)
        passed.add(response_model)

    reject_async_validators.remembers_passed_models = True  # type: ignore[attr-defined]
    async_validators.reject_async_validators = reject_async_validators
    if getattr(patch, "reject_async_validators", None) is check:  # imported by name there
        setattr(patch, "reject_async_validators", reject_async_validators)  # noqa: B010


@functools.cache
def instructor_model(response_model: type[T]) -> type[T]:
    """`response_model` wrapped for instructor (a subclass carrying its tool schema), made once
    per process: instructor would re-create the class, and its JSON schema, on every call, and a
    forked grading worker inherits it from `preload` instead of spending 10 ms on it."""
    import instructor

    return instructor.openai_schema(response_model)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context (the one an openai client makes for itself), made once per
    process and shared by its clients: loading the certificates costs about 30 ms of CPU, which
    every grading worker paid before its first request. Contexts are made to be shared."""
    import os
    import ssl

    import httpx2

    try:
        return httpx2.create_ssl_context()
    except (OSError, ssl.SSLError) as exc:  # SSL_CERT_FILE / SSL_CERT_DIR naming nothing usable
        where = os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR")
        source = f" from {where}" if where else ""
        raise LLMError(f"cannot load the TLS certificates{source}: {exc}") from exc


def async_http_client(slots: asyncio.Semaphore) -> Any:
    """openai's default async HTTP client, with the process's shared `tls_context` (async
    clients are the ones made many times over: one per grading worker and event loop), each of
    its requests holding one of `slots` while it is on the wire.

    Grades started beyond the connection limit (`grader.graders.base.calls_at_once`) have
    their requests built and waiting when a slot frees, so a connection carries the next
    request at once instead of after the CPU a grade spends on either side of its request."""
    return _slotted_client_class()(slots, verify=tls_context())


def preload(response_model: type[BaseModel]) -> None:
    """Import openai and instructor and run their one-time set-up (lazy imports, the wrapped
    model, the TLS context), about a second of CPU, so that processes forked afterwards skip it.
    Opens nothing, and builds no client."""
    import openai  # noqa: F401  (the import is the set-up)

    _quiet_library_loggers()
    check_async_validators_once_per_model()
    instructor_model(response_model)
    # a bad SSL_CERT_FILE is left for each client to report, as the reason of its grades
    with contextlib.suppress(LLMError):
        tls_context()


class LLMClient:
    """Structured calls to one OpenAI-compatible endpoint, logged and cached under `home`."""

    def __init__(self, settings: Settings, home: Path | None) -> None:
        self.settings = settings
        self._base_url = settings.effective_base_url
        wants_store = home is not None and (settings.log or settings.cache)
        self.store = (
            CallLog(home, redact=settings.redact) if wants_store and home is not None else None
        )
        self._sync: Instructor | None = None
        self._sync_lock = threading.Lock()
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncInstructor] = (
            weakref.WeakKeyDictionary()
        )
        self._schemas: dict[type[BaseModel], dict[str, Any]] = {}

    @property
    def model(self) -> str:
        return self.settings.model

    @property
    def base_url(self) -> str:
        return self._base_url

    @property
    def connection_limit(self) -> int:
        """Requests in flight at most, per event loop (async calls wait for a slot to send)."""
        return self.settings.max_connections

    # -- clients -------------------------------------------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        return {
            "api_key": self.settings.api_key_value(),
            "base_url": self._base_url,
            "timeout": self.settings.timeout,
            "max_retries": self.settings.max_retries,
        }

    def _sync_client(self) -> Instructor:
        with self._sync_lock:
            if self._sync is None:
                import openai

                _quiet_library_loggers()
                check_async_validators_once_per_model()
                client = openai.OpenAI(**self._client_options())
                self._sync = structured_client(client, self.settings.mode)
            return self._sync

    def _async_client(self) -> AsyncInstructor:
        # Async clients and semaphores belong to one event loop, so keep one client per loop.
        loop = asyncio.get_running_loop()
        state = self._async.get(loop)
        if state is None:
            import openai

            _quiet_library_loggers()
            check_async_validators_once_per_model()
            slots = asyncio.Semaphore(self.settings.max_connections)
            http_client = async_http_client(slots)
            client = openai.AsyncOpenAI(**self._client_options(), http_client=http_client)
            state = structured_client(client, self.settings.mode)
            self._async[loop] = state
        return state

    def close(self) -> None:
        """Close the sync HTTP client and this thread's database connection."""
        with self._sync_lock:
            if self._sync is not None:
                close = getattr(self._sync.client, "close", None)
                if callable(close):
                    close()
                self._sync = None
        if self.store is not None:
            self.store.close()

    async def aclose(self) -> None:
        """Close the running loop's async HTTP client (call before the loop ends)."""
        state = self._async.pop(asyncio.get_running_loop(), None)
        close = getattr(state.client, "close", None) if state is not None else None
        if callable(close):
            await close()

    # -- requests ------------------------------------------------------------------------------

    def _params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"temperature": self.settings.temperature}
        if self.settings.seed is not None:
            params["seed"] = self.settings.seed
        return params

    def _schema(self, response_model: type[BaseModel]) -> dict[str, Any]:
        schema = self._schemas.get(response_model)
        if schema is None:
            schema = response_model.model_json_schema()
            self._schemas[response_model] = schema
        return schema

    def _key(self, response_model: type[BaseModel], messages: list[Message]) -> str:
        return cache_key(
            model=self.settings.model,
            base_url=self._base_url,
            messages=messages,
            schema=self._schema(response_model),
            params={**self._params(), "mode": self.settings.mode},
        )

    def _from_cache(
        self,
        response_model: type[T],
        key: str,
        context: dict[str, Any] | None,
    ) -> T | None:
        if self.store is None or not self.settings.cache:
            return None
        hit = self.store.get(key)
        if hit is None:
            return None
        try:
            return response_model.model_validate(hit.value, context=context)
        except ValidationError:
            return None  # stale entry from an older schema: ask again

    def cached(
        self,
        response_model: type[T],
        messages: Sequence[Message],
        *,
        context: dict[str, Any] | None = None,
    ) -> T | None:
        """The cached value for this request, when caching is on and holds one; calls nothing."""
        key = self._key(response_model, [dict(m) for m in messages])
        return self._from_cache(response_model, key, context)

    def remember(
        self, response_model: type[T], messages: Sequence[Message], value: T, usage: Usage
    ) -> None:
        """Cache `value` as this request's answer, got another way (a Batch API output), so that
        a later run, live or batch, is answered from the cache as after a live call."""
        if self.store is not None and self.settings.cache:
            key = self._key(response_model, [dict(m) for m in messages])
            self.store.put(key, self.settings.model, value.model_dump(mode="json"), usage)

    def _begin(
        self,
        response_model: type[BaseModel],
        messages: Sequence[Message],
        prompt_hash: str | None,
        purpose: str,
    ) -> dict[str, Any]:
        """A call's start, as `_finish` takes it: its clock, messages and cache key."""
        started = time.perf_counter()
        msgs = [dict(m) for m in messages]
        key = self._key(response_model, msgs) if self.store is not None else ""  # only it uses it
        return {
            "response_model": response_model,
            "messages": msgs,
            "key": key,
            "prompt_hash": prompt_hash,
            "purpose": purpose,
            "started": started,
        }

    def _create_params(self, common: dict[str, Any], attempts: _Attempts) -> dict[str, Any]:
        """instructor's `create_with_completion` arguments for the call `_begin` started."""
        return {
            "response_model": instructor_model(common["response_model"]),
            "messages": common["messages"],
            "max_retries": self.settings.max_reasks,
            "strict": False,  # lax: a local model's "0.8" is the number 0.8
            "hooks": attempts.hooks,
            "model": self.settings.model,
            **self._params(),
        }

    def _finish(
        self,
        *,
        response_model: type[T],
        messages: list[Message],
        key: str,
        prompt_hash: str | None,
        purpose: str,
        started: float,
        value: T | None,
        usage: Usage,
        attempts: _Attempts | None,
        error: str | None,
        queued: float = 0.0,
    ) -> StructuredResult[T]:
        """`queued`: seconds spent waiting for a connection slot, left out of the latency."""
        latency_ms = (time.perf_counter() - started - queued) * 1000
        cached = attempts is None
        if self.store is not None:
            if value is not None and not cached and self.settings.cache:
                self.store.put(key, self.settings.model, value.model_dump(mode="json"), usage)
            if self.settings.log:
                self.store.log(
                    CallRecord(
                        purpose=purpose,
                        model=self.settings.model,
                        base_url=self._base_url,
                        prompt_hash=prompt_hash,
                        cache_key=key,
                        request={
                            "model": self.settings.model,
                            "messages": messages,
                            "response_model": response_model.__name__,
                            "mode": self.settings.mode,
                            **self._params(),
                        },
                        response={
                            "value": None if value is None else value.model_dump(mode="json"),
                            "completions": [] if attempts is None else attempts.responses,
                        },
                        error=error,
                        usage=usage,
                        latency_ms=latency_ms,
                        attempts=0 if attempts is None else attempts.count,
                        cached=cached,
                    )
                )
        if value is None:
            raise LLMError(error or "the LLM call failed")
        return StructuredResult(
            value=value,
            usage=usage,
            latency_ms=latency_ms,
            cached=cached,
            attempts=0 if attempts is None else attempts.count,
            model=self.settings.model,
            base_url=self._base_url,
        )

    def structured(
        self,
        response_model: type[T],
        messages: Sequence[Message],
        *,
        prompt_hash: str | None,
        purpose: str,
        context: dict[str, Any] | None = None,
    ) -> StructuredResult[T]:
        """A validated `response_model` from the endpoint (or the cache); LLMError on failure."""
        common = self._begin(response_model, messages, prompt_hash, purpose)
        cached = self._from_cache(response_model, common["key"], context)
        if cached is not None:
            return self._finish(**common, value=cached, usage=Usage(), attempts=None, error=None)
        attempts = _Attempts(keep_responses=self.store is not None and self.settings.log)
        try:
            client = self._sync_client()
            with validation_context(context):
                value, completion = client.chat.completions.create_with_completion(
                    **self._create_params(common, attempts)
                )
        except Exception as exc:  # every failure becomes one reason line
            usage = _usage_of_failure(exc)
            return self._finish(
                **common, value=None, usage=usage, attempts=attempts, error=self.describe(exc)
            )
        usage = _usage_of(value, completion)
        return self._finish(**common, value=value, usage=usage, attempts=attempts, error=None)

    async def astructured(
        self,
        response_model: type[T],
        messages: Sequence[Message],
        *,
        prompt_hash: str | None,
        purpose: str,
        context: dict[str, Any] | None = None,
    ) -> StructuredResult[T]:
        """Async `structured`. The requests of all calls on one event loop share
        `max_connections` slots; a call waits for one only to send (see `async_http_client`)."""
        common = self._begin(response_model, messages, prompt_hash, purpose)
        cached = self._from_cache(response_model, common["key"], context)
        if cached is not None:
            return self._finish(**common, value=cached, usage=Usage(), attempts=None, error=None)
        client = self._async_client()
        attempts = _Attempts(keep_responses=self.store is not None and self.settings.log)
        waits: list[float] = []
        waits_token = _SLOT_WAITS.set(waits)
        try:
            with validation_context(context):
                value, completion = await client.chat.completions.create_with_completion(
                    **self._create_params(common, attempts)
                )
        except Exception as exc:
            usage = _usage_of_failure(exc)
            return self._finish(
                **common,
                value=None,
                usage=usage,
                attempts=attempts,
                error=self.describe(exc),
                queued=sum(waits),
            )
        finally:
            _SLOT_WAITS.reset(waits_token)
        usage = _usage_of(value, completion)
        return self._finish(
            **common, value=value, usage=usage, attempts=attempts, error=None, queued=sum(waits)
        )

    # -- errors --------------------------------------------------------------------------------

    def describe(self, exc: BaseException) -> str:
        """One actionable line for a failed call, with the API key redacted."""
        return self.settings.redact(_describe(exc, self.settings, self._base_url))


def _usage_of(value: BaseModel, completion: Any) -> Usage:
    total = getattr(value, "_total_usage", None) or getattr(completion, "usage", None)
    return _to_usage(total)


def _usage_of_failure(exc: BaseException) -> Usage:
    return _to_usage(getattr(exc, "total_usage", None))


def _to_usage(raw: Any) -> Usage:
    if raw is None:
        return Usage()
    return Usage(
        prompt_tokens=int(getattr(raw, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(raw, "completion_tokens", 0) or 0),
    )


def _caused_by(exc: BaseException, class_name: str) -> bool:
    """Whether an exception of that class name is in `exc`'s chain of causes (by name: the HTTP
    stack's and vcrpy's classes are not imported here). openai reports both a request that
    `grader eval --replay` finds in no cassette and an endpoint hanging up as connection errors;
    the cause tells them apart."""
    seen: BaseException | None = exc
    for _ in range(10):  # a cause chain is short; never loop on a cyclic one
        if seen is None:
            return False
        if type(seen).__name__ == class_name:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _describe(exc: BaseException, settings: Settings, base_url: str) -> str:
    import openai
    from instructor.core.exceptions import InstructorRetryException

    attempts = None
    retry = exc if isinstance(exc, InstructorRetryException) else None
    if retry is not None:
        attempts = retry.n_attempts
        if retry.__cause__ is not None:
            exc = retry.__cause__
    retries = settings.max_retries
    if isinstance(exc, openai.APITimeoutError):
        return (
            f"{base_url} timed out after {settings.timeout:g}s ({retries} retries); a local "
            "server may still be loading the model: raise the timeout (GRADER_TIMEOUT, or "
            "timeout in $GRADER_HOME/config.toml)"
        )
    if _caused_by(exc, "CannotOverwriteExistingCassetteException"):  # vcrpy, in --replay
        return (
            "no exchange recorded in the cassette matches this request (replaying: the data, "
            "prompt or settings differ from the recorded run's)"
        )
    if isinstance(exc, openai.APIConnectionError):
        if _caused_by(exc, "RemoteProtocolError") or _caused_by(exc, "ReadError"):
            # connected, then no reply, a broken one, or the connection reset mid-reply
            return (
                f"the LLM endpoint {base_url} closed the connection without a complete reply "
                f"({retries} retries)"
            )
        return f"cannot connect to the LLM endpoint {base_url} ({retries} retries)"
    if isinstance(exc, openai.AuthenticationError):
        return f"the LLM endpoint {base_url} rejected the API key (HTTP 401): check OPENAI_API_KEY"
    if isinstance(exc, openai.RateLimitError):
        # 429 also means an exhausted quota, which no wait cures: the server's words tell which
        said = _server_said(exc, settings)
        return f"rate limited by {base_url} (HTTP 429) after {retries} retries" + (
            f": {said}" if said else ""
        )
    if isinstance(exc, openai.NotFoundError):
        if urlsplit(base_url).path.strip("/") == "":
            return (
                f"HTTP 404 from {base_url}: OpenAI-compatible servers answer under /v1; "
                f"try base_url {base_url.rstrip('/')}/v1"
            )
        said = _server_said(exc, settings)
        return f"HTTP 404 from {base_url}: {said + '; ' if said else ''}" + (
            f"is model {settings.model!r} served there?"
        )
    if isinstance(exc, openai.APIStatusError):
        said = _server_said(exc, settings)
        return f"HTTP {exc.status_code} from {base_url}: {said}{_setting_hint(said, settings)}"
    bad_reply = _bad_reply(exc, retry, settings, base_url)
    if bad_reply is not None:
        return bad_reply
    if isinstance(exc, ValidationError):
        errors = exc.errors()
        where = ".".join(str(p) for p in errors[0]["loc"]) if errors else ""
        message = str(errors[0]["msg"]) if errors else str(exc)
        tries = f" after {attempts} attempts" if attempts else ""
        reason = _line(message, settings)
        return (
            f"the model's output never validated{tries}: {where or 'output'}: {reason}"
            + _mode_hint(reason, settings)
        )
    if isinstance(exc, ValueError):
        tries = f" after {attempts} attempts" if attempts else ""
        reason = _line(str(exc), settings)
        return f"the model's output could not be parsed{tries}: {reason}" + _mode_hint(
            reason, settings
        )
    return f"the LLM call failed: {type(exc).__name__}: {_line(str(exc), settings)}"


def _mode_hint(reason: str, settings: Settings) -> str:
    """The instructor mode that would read what the model sent, when the reason shows it."""
    lowered = reason.lower()
    if settings.mode == "tools" and "tool call" in lowered:
        return "; the model answered in text, not with a tool call: try mode json or md_json"
    if settings.mode in ("json", "json_schema") and "invalid json" in lowered:
        return "; if the model wraps its JSON in text or a code fence, try mode md_json"
    return ""


def _bad_reply(
    exc: BaseException, retry: BaseException | None, settings: Settings, base_url: str
) -> str | None:
    """The reason when the endpoint's HTTP reply itself was unusable (a body that is not JSON,
    a completion without choices), which instructor reports as if the model's output were."""
    if isinstance(exc, NotACompletion):
        shown = _line(exc.text, settings)[:60]  # redacted, then cut
        return f"the reply from {base_url} was not a chat completion: {exc.what} {shown}"
    if isinstance(exc, ReplyNotJSON):
        return _not_json(exc.body, exc.error, settings, base_url)
    completion = getattr(retry, "last_completion", None)
    if completion is not None and not getattr(completion, "choices", True):
        extra = getattr(completion, "model_extra", None) or {}
        error = _said_in(extra) if "error" in extra else None  # OpenRouter's error at HTTP 200
        if not error:
            return f"the reply from {base_url} had no choices"
        said = _line(error if isinstance(error, str) else json.dumps(error), settings)
        return f"the reply from {base_url} had no choices: {said}"
    return None


def _not_json(body: str, error: str | None, settings: Settings, base_url: str) -> str:
    """The reason for a reply whose body is not JSON: an HTML page's title, else the parser's
    complaint and how the body began."""
    page = _html_page(body, settings)
    if page is not None:
        detail = page
    elif not body.strip():
        detail = "the body was empty"
    else:
        began = _line(body, settings)[:60]
        detail = f"{error}; the body began {began!r}" if error else f"the body began {began!r}"
    return f"the reply from {base_url} was not valid JSON: {detail}"


def _json_error(text: str) -> str | None:
    try:
        json.loads(text)
    except ValueError as exc:
        return str(exc)
    return None


_HTML = re.compile(r"<(?:!doctype\s+html|html|head|body|title)\b", re.IGNORECASE)
_TITLE = re.compile(r"<title[^>]*>(.*?)</title\s*>", re.IGNORECASE | re.DOTALL)


def _html_page(text: str, settings: Settings) -> str | None:
    """A one-line account of `text` when it is an HTML page (a proxy's or gateway's, not the
    endpoint's own answer): its title, if it has one. None when `text` is not HTML."""
    start = text.lstrip()[:2000]
    if not start.startswith("<") or not _HTML.search(start):
        return None
    found = _TITLE.search(text[:20000])
    title = _line(html.unescape(found.group(1)), settings)[:120] if found else ""
    if not title:
        return "an HTML page (a proxy or gateway between you and the endpoint?)"
    return f"{title} (an HTML page: a proxy or gateway between you and the endpoint?)"


def _said_in(body: dict[str, Any]) -> Any:
    """The message in an error body: OpenAI's `{"error": {"message"}}`, a bare
    `{"error": "..."}`, or FastAPI's `{"detail": ...}`."""
    error = body.get("error", body)
    return (error.get("message") or error.get("detail")) if isinstance(error, dict) else error


def _server_said(exc: Any, settings: Settings) -> str:
    """The error message in the server's response body (see `_said_in`; an HTML page is told
    by its title), else the client's own text."""
    body = getattr(exc, "body", None)
    said: Any = None
    if isinstance(body, dict):
        said = _said_in(body)
    elif isinstance(body, str):
        said = body
    if not said:
        said = re.sub(r"^Error code: \d+ - ", "", str(getattr(exc, "message", "") or exc))
    text = said if isinstance(said, str) else json.dumps(said)
    page = _html_page(text, settings)
    return page if page is not None else _line(text, settings)


_SETTING_HINTS = (
    ("seed", "if the server refuses seed, set seed = false in $GRADER_HOME/config.toml"),
    ("response_format", "the server refuses this output format: try mode md_json"),
    ("json_schema", "the server refuses this output format: try mode md_json"),
    ("tool", "the server or model has no tool calls: try mode json or md_json"),
)
"""A refused request's likely cause, by a word of the server's message, and the setting that
avoids it (mode: --mode, GRADER_MODE, or mode in config.toml)."""


def _setting_hint(said: str, settings: Settings) -> str:
    lowered = said.lower()
    for word, hint in _SETTING_HINTS:
        if word in lowered and (word != "seed" or settings.seed is not None):
            return f" ({hint})"
    return ""


def _line(text: str, settings: Settings) -> str:
    """The first line of `text`, the API key redacted before it is cut short (a cut through the
    key would leave its start unrecognised)."""
    return _first_line(settings.redact(text))


def _first_line(text: str) -> str:
    line = " ".join(str(text).strip().split("\n")[0].split())
    return line[:300]
