"""`--record` / `--replay`: a run's HTTP exchanges stored with vcrpy and played back offline.

Requests match on method, path, query and body (a changed prompt never replays an old answer);
authorization and organisation headers are scrubbed and response headers dropped before saving.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grader.errors import InputError

MATCH_ON = ["method", "path", "query", "body"]
FILTER_HEADERS: list[tuple[str, Any]] = [
    ("authorization", "REDACTED"),
    ("api-key", None),
    ("openai-organization", None),
    ("openai-project", None),
    ("cookie", None),
]


def scrubbed_response(response: dict[str, Any], secret: str | None) -> dict[str, Any]:
    """A response as it may be stored: no headers, and the API key nowhere in the body (a server
    may echo it: "Incorrect API key provided: sk-…")."""
    response["headers"] = {}
    body = response.get("body") or {}
    if "string" in body:
        body["string"] = _without(body["string"], secret)
    return response


def scrubbed_request(request: Any, secret: str | None) -> Any:
    """A vcrpy request as it may be stored: the API key nowhere in its body (a re-ask sends back
    the model's previous answer, which may hold what the server echoed)."""
    request.body = _without(request.body, secret)
    return request


def _without(body: Any, secret: str | None) -> Any:
    """`body` (bytes or text) with `secret` replaced by ***; anything else as it is."""
    if not secret:
        return body
    if isinstance(body, bytes):
        return body.replace(secret.encode(), b"***")
    if isinstance(body, str):
        return body.replace(secret, "***")
    return body


@contextlib.contextmanager
def use_cassette(path: Path, *, record: bool, secret: str | None = None) -> Iterator[None]:
    """Record every exchange into `path` (overwriting it), or replay from it with no network.
    `secret` (the API key) is scrubbed from every recorded body."""
    import vcr

    recorder = vcr.VCR(
        record_mode="all" if record else "none",
        match_on=MATCH_ON,
        filter_headers=FILTER_HEADERS,
        before_record_request=lambda request: scrubbed_request(request, secret),
        before_record_response=lambda response: scrubbed_response(response, secret),
        decode_compressed_response=True,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with recorder.use_cassette(str(path), allow_playback_repeats=True):
        yield


def recorded_endpoint(path: Path) -> tuple[str | None, str | None]:
    """The base URL and model of the first chat-completion request recorded in a cassette.
    InputError when the file is no cassette, or records no exchange to replay."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        reason = " ".join(str(exc).split())
        raise InputError(f"not a readable cassette ({reason})", path=path) from None
    interactions = data.get("interactions") if isinstance(data, dict) else None
    if not isinstance(interactions, list) or not all(
        isinstance(i, dict) and isinstance(i.get("request"), dict) for i in interactions
    ):
        raise InputError("not a vcrpy cassette (no list of `interactions`)", path=path)
    if not interactions:
        raise InputError("the cassette records no exchange; nothing to replay", path=path)
    for interaction in interactions:
        request = interaction["request"]
        uri = str(request.get("uri", ""))
        if "/chat/completions" not in uri:
            continue
        model = None
        try:
            body = json.loads(request.get("body") or "{}")
            model = body.get("model") if isinstance(body, dict) else None
        except (TypeError, ValueError):
            pass
        return uri.split("/chat/completions", 1)[0], model
    return None, None
