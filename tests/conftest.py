"""Shared fixtures: an isolated GRADER_HOME per test, and the vcrpy configuration for cassettes."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from vcr.persisters.filesystem import FilesystemPersister

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"

# Read at import, before the autouse fixture below clears them for every test: the endpoint that
# `--record-mode=rewrite` records cassettes against (README, "Tests"). None: the loopback server.
RECORD_ENDPOINT: dict[str, str] | None = (
    {
        "base_url": os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1",
        "api_key": os.environ.get("OPENAI_API_KEY") or "",
        "model": os.environ.get("GRADER_MODEL") or "gpt-4o-mini",
    }
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL")
    else None
)


@pytest.fixture(autouse=True)
def grader_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own GRADER_HOME and no ambient endpoint configuration."""
    home = tmp_path / "grader-home"
    monkeypatch.setenv("GRADER_HOME", str(home))
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "GRADER_MODEL", "GRADER_MODE"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(scope="session")
def record_endpoint() -> dict[str, str] | None:
    """The real endpoint to record cassettes against, or None for the loopback server."""
    return RECORD_ENDPOINT


@pytest.fixture
def recorded_endpoint(vcr_cassette_dir: str, request: pytest.FixtureRequest) -> tuple[str, str]:
    """(base URL, model) of the first request in this test's cassette, for replaying it."""
    cassette = Path(vcr_cassette_dir) / f"{request.node.name}.yaml"
    data = yaml.safe_load(cassette.read_text(encoding="utf-8"))
    recorded = data["interactions"][0]["request"]
    return _endpoint(recorded["uri"]), _model(recorded["body"])


def _scrub_request(request: Any) -> Any:
    from grader.evaluation.cassette import scrubbed_request

    return scrubbed_request(request, os.environ.get("OPENAI_API_KEY"))


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """No headers, and the recording key nowhere in a body (a server may echo it)."""
    from grader.evaluation.cassette import scrubbed_response

    return scrubbed_response(response, os.environ.get("OPENAI_API_KEY"))


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
        "before_record_request": _scrub_request,
        "before_record_response": _scrub_response,
        "decode_compressed_response": True,
    }


@pytest.fixture(scope="module")
def vcr_cassette_dir(request: pytest.FixtureRequest) -> str:
    module = request.module.__name__.rsplit(".", 1)[-1]
    return str(REPO_ROOT / "tests" / "cassettes" / module)


class _ProvenancePersister(FilesystemPersister):
    """Writes a header saying when, by which test module and against which endpoint and model a
    cassette was recorded, so that a re-recorded cassette still says where it came from."""

    @staticmethod
    def save_cassette(cassette_path: Any, cassette_dict: dict[str, Any], serializer: Any) -> None:
        FilesystemPersister.save_cassette(cassette_path, cassette_dict, serializer)
        path = Path(cassette_path)
        path.write_text(_provenance(path, cassette_dict) + path.read_text(), encoding="utf-8")


def _provenance(path: Path, cassette_dict: dict[str, Any]) -> str:
    requests = cassette_dict.get("requests") or []
    endpoints = sorted({_endpoint(r.uri) for r in requests})
    models = sorted({_model(r.body) for r in requests} - {""})
    host = urlsplit(requests[0].uri).hostname if requests else ""
    where = (
        "the LOOPBACK server (grader.testing.openai_server, the test's scripted replies)"
        if host in {"127.0.0.1", "localhost"}
        else "a real endpoint"
    )
    return (
        f"# Recorded {dt.date.today().isoformat()} by tests/{path.parent.name}.py against {where}\n"
        f"# at {', '.join(endpoints) or '-'}, model {', '.join(models) or '-'}.\n"
        "# Re-record: see README.md, section Tests.\n"
    )


def _endpoint(uri: str) -> str:
    return uri.rsplit("/chat/completions", 1)[0]


def _model(body: bytes | str | None) -> str:
    try:
        return str(json.loads(body or b"{}").get("model", ""))
    except ValueError:
        return ""


def pytest_recording_configure(config: pytest.Config, vcr: Any) -> None:
    vcr.register_persister(_ProvenancePersister)
