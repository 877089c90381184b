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


def _drop_response_headers(response: dict[str, Any]) -> dict[str, Any]:
    response["headers"] = {}
    return response


@contextlib.contextmanager
def use_cassette(path: Path, *, record: bool) -> Iterator[None]:
    """Record every exchange into `path` (overwriting it), or replay from it with no network."""
    import vcr

    recorder = vcr.VCR(
        record_mode="all" if record else "none",
        match_on=MATCH_ON,
        filter_headers=FILTER_HEADERS,
        before_record_response=_drop_response_headers,
        decode_compressed_response=True,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with recorder.use_cassette(str(path), allow_playback_repeats=True):
        yield


def recorded_endpoint(path: Path) -> tuple[str | None, str | None]:
    """The base URL and model of the first chat-completion request recorded in a cassette."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"not a readable cassette ({exc})", path=path) from None
    for interaction in data.get("interactions") or []:
        request = interaction.get("request") or {}
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
