"""Output: the versioned --json envelope on stdout, human text via rich, notices on stderr."""

from __future__ import annotations

import json
import sys
from typing import Any

from pydantic import BaseModel

JSON_VERSION = 1


def envelope(command: str, data: Any) -> dict[str, Any]:
    """The stable `--json` shape scripts depend on: version, command, data."""
    return {"version": JSON_VERSION, "command": command, "data": _plain(data)}


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def print_json(command: str, data: Any) -> None:
    sys.stdout.write(json.dumps(envelope(command, data), ensure_ascii=False, indent=2) + "\n")


def notice(message: str) -> None:
    """A one-line notice for humans on stderr (never mixed into --json output)."""
    sys.stderr.write(message.rstrip("\n") + "\n")


def error_line(message: str) -> None:
    """The single error line shown for a failed command."""
    first = " ".join(str(message).split("\n")[0].split())
    sys.stderr.write(f"error: {first}\n")
