"""A fake `StructuredLLM`: queue outputs (values, dicts or exceptions), inspect the calls it got."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from grader.errors import LLMError
from grader.llm.adapter import Message, StructuredResult
from grader.models import Usage

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class FakeCall:
    response_model: type[BaseModel]
    messages: list[Message]
    prompt_hash: str | None
    purpose: str
    context: dict[str, Any] | None


class FakeLLM:
    """Answers structured calls from a queue; a dict is validated into the requested model with
    the call's context (so validators run as they would on real output), an exception is raised
    as an LLMError."""

    def __init__(
        self, outputs: Sequence[BaseModel | dict[str, Any] | Exception] = (), *, model: str = "fake"
    ) -> None:
        self.outputs: deque[BaseModel | dict[str, Any] | Exception] = deque(outputs)
        self.calls: list[FakeCall] = []
        self._model = model
        self.closed = False

    @property
    def model(self) -> str:
        return self._model

    @property
    def base_url(self) -> str:
        return "fake://llm"

    def queue(self, *outputs: BaseModel | dict[str, Any] | Exception) -> None:
        self.outputs.extend(outputs)

    def structured(
        self,
        response_model: type[T],
        messages: Sequence[Message],
        *,
        prompt_hash: str | None,
        purpose: str,
        context: dict[str, Any] | None = None,
    ) -> StructuredResult[T]:
        self.calls.append(
            FakeCall(response_model, [dict(m) for m in messages], prompt_hash, purpose, context)
        )
        if not self.outputs:
            raise LLMError("fake LLM: no output queued")
        output = self.outputs.popleft()
        if isinstance(output, LLMError):
            raise output
        if isinstance(output, Exception):
            raise LLMError(f"fake LLM: {output}")
        try:
            value = response_model.model_validate(
                output.model_dump() if isinstance(output, BaseModel) else output, context=context
            )
        except ValueError as exc:
            raise LLMError(f"fake LLM output did not validate: {exc}") from None
        return StructuredResult(
            value=value,
            usage=Usage(prompt_tokens=100, completion_tokens=20),
            latency_ms=1.0,
            cached=False,
            attempts=1,
            model=self._model,
            base_url=self.base_url,
        )

    async def astructured(
        self,
        response_model: type[T],
        messages: Sequence[Message],
        *,
        prompt_hash: str | None,
        purpose: str,
        context: dict[str, Any] | None = None,
    ) -> StructuredResult[T]:
        return self.structured(
            response_model, messages, prompt_hash=prompt_hash, purpose=purpose, context=context
        )

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True
