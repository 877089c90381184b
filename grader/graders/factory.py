"""Choose a grader: the LLM grader when an endpoint is configured, else the offline one."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from grader.errors import ConfigError
from grader.graders.base import Grader
from grader.models import Card
from grader.settings import Settings

GraderChoice = Literal["auto", "offline", "llm"]

OFFLINE_NOTICE = (
    "no LLM endpoint configured (OPENAI_API_KEY / OPENAI_BASE_URL): grading offline "
    "with the embedded model"
)


def make_grader(
    kind: GraderChoice,
    settings: Settings,
    home: Path,
    notice: Callable[[str], None],
    context: Sequence[Card] = (),
) -> Grader:
    """Build the grader `kind` asks for; `auto` falls back to offline with one notice.
    `context` is the deck(s) being graded: the offline grader catches an answer meant for
    another of those cards (the LLM grader sees one card at a time)."""
    if kind == "llm" or (kind == "auto" and settings.endpoint_configured):
        if kind == "llm" and not settings.endpoint_configured:
            raise ConfigError(
                "--grader llm needs an endpoint: set OPENAI_API_KEY and/or OPENAI_BASE_URL, "
                "pass --base-url, or write base_url in $GRADER_HOME/config.toml"
            )
        from grader.graders.llm import LLMGrader

        return LLMGrader(settings, home)
    if kind == "auto":
        notice(OFFLINE_NOTICE)
    from grader.graders.offline import OfflineGrader

    return OfflineGrader.load(context=context)
