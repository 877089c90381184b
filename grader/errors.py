"""Errors grader reports to users: one line each, mapped to exit codes at the CLI boundary."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydantic import ValidationError


class GraderError(Exception):
    """A failure the user can act on; its message is shown as one line, without a traceback."""


class InputError(GraderError):
    """Bad input in a file, a line or a field the user supplied; the message names where."""

    def __init__(self, message: str, *, path: object | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(f"{where}{message}")
        self.path = path
        self.line = line


class UsageError(GraderError):
    """Options or arguments that do not go together or are out of range (exit code 2)."""


class DeckError(InputError):
    """A deck file that does not parse or validate."""


class NotFoundError(GraderError):
    """A deck, card, run or proposal that does not exist."""


class ConfigError(GraderError):
    """Missing or invalid configuration (endpoint, model, key)."""


class ModelNotInstalledError(GraderError):
    """The offline embedding model is missing or fails its checksum."""


class LLMError(GraderError):
    """The LLM endpoint failed after retries, or its output never validated."""


def first_error(exc: ValidationError, whole: str) -> tuple[str, str]:
    """The first error of a validation as (the field's dotted path, or `whole` when the check is
    on the model itself; the validator's own message without pydantic's "Value error, ")."""
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"]) or whole
    return field, str(error.get("ctx", {}).get("error", error["msg"]))
