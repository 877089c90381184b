"""make_grader: auto picks the LLM when an endpoint is configured, else offline with one notice."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from grader.errors import ConfigError
from grader.graders.factory import OFFLINE_NOTICE, make_grader
from grader.graders.llm import LLMGrader
from grader.settings import Settings


class StubOffline:
    kind = "offline"

    @classmethod
    def load(cls, context: object = ()) -> StubOffline:
        return cls()


@pytest.fixture
def offline_stub(monkeypatch: pytest.MonkeyPatch) -> None:
    module = types.ModuleType("grader.graders.offline")
    module.OfflineGrader = StubOffline  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "grader.graders.offline", module)


def test_auto_without_endpoint_is_offline_with_one_notice(
    grader_home: Path, offline_stub: None
) -> None:
    notices: list[str] = []
    grader = make_grader("auto", Settings(), grader_home, notices.append)
    assert grader.kind == "offline"
    assert notices == [OFFLINE_NOTICE]


def test_explicit_offline_says_nothing(grader_home: Path, offline_stub: None) -> None:
    notices: list[str] = []
    assert make_grader("offline", Settings(), grader_home, notices.append).kind == "offline"
    assert notices == []


def test_auto_with_endpoint_is_llm(grader_home: Path) -> None:
    notices: list[str] = []
    settings = Settings(base_url="http://127.0.0.1:9/v1")
    grader = make_grader("auto", settings, grader_home, notices.append)
    assert isinstance(grader, LLMGrader)
    assert notices == []


def test_llm_without_endpoint_is_a_config_error(grader_home: Path) -> None:
    with pytest.raises(ConfigError, match="needs an endpoint"):
        make_grader("llm", Settings(), grader_home, print)
