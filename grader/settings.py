"""LLM endpoint settings: CLI options > environment > `$GRADER_HOME/config.toml` > defaults.

The config file is flat TOML, e.g.:

    base_url = "http://localhost:11434/v1"
    model = "qwen2.5:7b-instruct"
    mode = "json"
    max_connections = 4
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from grader.errors import ConfigError, first_error

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
CONFIG_FILE = "config.toml"
DEFAULT_MODEL = "gpt-4o-mini"
DEFAULT_SEED = 1234

InstructorMode = Literal["tools", "json", "md_json", "json_schema"]

ENV_KEYS: dict[str, str] = {
    "OPENAI_API_KEY": "api_key",
    "OPENAI_BASE_URL": "base_url",
    "GRADER_MODEL": "model",
    "GRADER_MODE": "mode",
    "GRADER_TIMEOUT": "timeout",
}


class Settings(BaseModel):
    """How to reach an OpenAI-compatible endpoint, and how to call it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str | None = None
    """Endpoint base URL (e.g. `http://localhost:11434/v1`); None means OpenAI's default."""
    api_key: SecretStr | None = None
    """API key; never logged, cached or shown."""
    model: str = DEFAULT_MODEL
    """Model name sent with every request."""
    mode: InstructorMode = "tools"
    """instructor mode: `tools` (function calling), `json`, `md_json` or `json_schema`."""
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    """Sampling temperature (0 for repeatable grades)."""
    seed: int | None = DEFAULT_SEED
    """Sampling seed sent to servers that accept one; `false` in config.toml omits it."""
    timeout: float = Field(default=60.0, gt=0)
    """Seconds per HTTP request."""
    max_retries: int = Field(default=2, ge=0, le=10)
    """Transport retries by the openai client (429, 5xx, timeouts, connection errors)."""
    max_reasks: int = Field(default=2, ge=0, le=10)
    """instructor re-asks when the output fails validation."""
    max_connections: int = Field(default=8, ge=1, le=256)
    """Concurrent requests to the endpoint (one shared limit per grader)."""
    log: bool = True
    """Log every call to SQLite under GRADER_HOME."""

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        """Refused now, not after a run of ungraded answers: a URL without http(s) and a host."""
        if not value:  # unset, or set to nothing: OpenAI's default
            return None
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises on a port that is not a number
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a URL ({exc})") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{value!r} is not an http(s) URL such as http://localhost:11434/v1")
        return value

    cache: bool = True
    """Answer identical requests from the request cache."""

    @property
    def effective_base_url(self) -> str:
        """The endpoint calls go to: the configured base URL, else OpenAI's."""
        return (self.base_url or OPENAI_DEFAULT_BASE_URL).rstrip("/")

    @property
    def endpoint_configured(self) -> bool:
        """True when an endpoint was configured (a key for OpenAI, or a base URL)."""
        return self.api_key is not None or self.base_url is not None

    def api_key_value(self) -> str:
        """The key to send; local servers usually need none, but the client wants a string."""
        return self.api_key.get_secret_value() if self.api_key is not None else "not-needed"

    def redact(self, text: str) -> str:
        """`text` with the API key (if any) replaced, for error messages."""
        if self.api_key is None:
            return text
        secret = self.api_key.get_secret_value()
        return text.replace(secret, "***") if secret else text

    def public(self) -> dict[str, Any]:
        """Settings safe to show or log: the key is reduced to whether one is set."""
        data = self.model_dump(mode="json", exclude={"api_key"})
        data["api_key"] = "set" if self.api_key is not None else "not set"
        return data


def read_config(home: Path) -> dict[str, Any]:
    """The settings in `$GRADER_HOME/config.toml` ({} when there is none)."""
    import tomllib

    path = home / CONFIG_FILE
    if path.exists() and not path.is_file():
        raise ConfigError(f"{path}: not a file; the settings file must be a TOML file")
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    unknown = sorted(set(data) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"{path}: unknown setting {unknown[0]!r}")
    if data.get("seed") is False:
        data["seed"] = None
    return data


def resolve_settings(
    home: Path, environ: Mapping[str, str] | None = None, **cli_overrides: Any
) -> Settings:
    """Merge the sources (CLI options > env > config file > defaults); None options are unset."""
    env = os.environ if environ is None else environ
    merged: dict[str, Any] = read_config(home)
    for variable, key in ENV_KEYS.items():
        value = env.get(variable)
        if value:
            merged[key] = value
    merged.update({k: v for k, v in cli_overrides.items() if v is not None})
    try:
        return Settings.model_validate(merged)
    except ValidationError as exc:
        field, message = first_error(exc, "settings")
        raise ConfigError(f"setting {field}: {message}") from None
