"""Shared fixtures: an isolated GRADER_HOME per test, and the vcrpy configuration for cassettes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"


@pytest.fixture(autouse=True)
def grader_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own GRADER_HOME and no ambient endpoint configuration."""
    home = tmp_path / "grader-home"
    monkeypatch.setenv("GRADER_HOME", str(home))
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GRADER_MODEL", "GRADER_MODE"):
        monkeypatch.delenv(name, raising=False)
    return home


def _drop_response_headers(response: dict[str, Any]) -> dict[str, Any]:
    response["headers"] = {}
    return response


@pytest.fixture(scope="module")
def vcr_config() -> dict[str, Any]:
    """Cassettes match on the request body (a changed prompt must not replay an old answer)."""
    return {
        "match_on": ["method", "scheme", "host", "port", "path", "query", "body"],
        "filter_headers": [
            ("authorization", "REDACTED"),
            ("openai-organization", None),
            ("openai-project", None),
            ("api-key", None),
            ("cookie", None),
        ],
        "before_record_response": _drop_response_headers,
        "decode_compressed_response": True,
    }


@pytest.fixture(scope="module")
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    module = request.module.__name__.rsplit(".", 1)[-1]
    return str(REPO_ROOT / "tests" / "cassettes" / module)
