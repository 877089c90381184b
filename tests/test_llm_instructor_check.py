"""The adapter's speed-up of instructor's per-call async-validator check keeps its behaviour."""

from __future__ import annotations

from typing import Any

import pytest
from instructor.v2.core import patch
from instructor.v2.validation import async_validators
from pydantic import BaseModel

from grader.llm.adapter import check_async_validators_once_per_model
from grader.llm.schemas import GradeResponse


class _WithAsyncValidator(BaseModel):
    name: str

    @async_validators.async_field_validator("name")
    async def _check(self, value: str) -> str:
        return value


@pytest.fixture
def counted_check(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """instructor's check, counting the models it walks; both places that hold it are restored
    after the test."""
    original = async_validators.reject_async_validators
    walked: list[Any] = []

    def counting(response_model: Any) -> None:
        walked.append(response_model)
        original(response_model)

    monkeypatch.setattr(async_validators, "reject_async_validators", counting)
    monkeypatch.setattr(patch, "reject_async_validators", counting)
    check_async_validators_once_per_model()
    return walked


def test_a_model_that_passed_is_walked_once(counted_check: list[Any]) -> None:
    for _ in range(5):
        async_validators.reject_async_validators(GradeResponse)
        patch.reject_async_validators(GradeResponse)
    assert counted_check == [GradeResponse]


def test_a_model_with_an_async_validator_is_refused_every_time(counted_check: list[Any]) -> None:
    for _ in range(3):
        with pytest.raises(ValueError, match="async validators are not supported"):
            async_validators.reject_async_validators(_WithAsyncValidator)
    assert counted_check == [_WithAsyncValidator] * 3


def test_an_unhashable_model_is_checked_every_time(counted_check: list[Any]) -> None:
    unhashable: Any = [GradeResponse]
    async_validators.reject_async_validators(unhashable)
    async_validators.reject_async_validators(unhashable)
    assert len(counted_check) == 2


def test_installing_twice_wraps_once(counted_check: list[Any]) -> None:
    check_async_validators_once_per_model()
    installed = async_validators.reject_async_validators
    check_async_validators_once_per_model()
    assert async_validators.reject_async_validators is installed
    assert patch.reject_async_validators is installed
