"""Validation context for LLM response models, without handing it to instructor.

instructor treats its `context=` argument as Jinja template variables and renders every message
with it, which would let learner text such as `{{ rubric }}` be expanded. So the adapter never
passes `context=`; it sets this context variable around the call instead, and validators read it
(task- and thread-local, so concurrent calls never see each other's rubric).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from pydantic import ValidationInfo

_CONTEXT: ContextVar[dict[str, Any] | None] = ContextVar("grader_validation_context", default=None)


@contextmanager
def validation_context(context: dict[str, Any] | None) -> Iterator[None]:
    token = _CONTEXT.set(context)
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def current_context(info: ValidationInfo) -> dict[str, Any]:
    """The context pydantic was given (`model_validate(context=...)`), else the call's."""
    if isinstance(info.context, dict):
        return info.context
    return _CONTEXT.get() or {}
