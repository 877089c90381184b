"""Settings precedence: CLI options > environment > $GRADER_HOME/config.toml > defaults."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from grader.errors import ConfigError
from grader.settings import DEFAULT_MODEL, Settings, resolve_settings


def write_config(home: Path, text: str) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text, encoding="utf-8")


def test_defaults_have_no_endpoint(grader_home: Path) -> None:
    settings = resolve_settings(grader_home, environ={})
    assert settings.model == DEFAULT_MODEL
    assert settings.mode == "tools"
    assert settings.temperature == 0.0
    assert settings.seed is not None
    assert not settings.endpoint_configured


def test_config_file_then_env_then_cli(grader_home: Path) -> None:
    write_config(
        grader_home,
        'base_url = "http://config:1/v1"\nmodel = "from-config"\n'
        'mode = "json"\nmax_connections = 3\n',
    )
    settings = resolve_settings(grader_home, environ={})
    assert (settings.base_url, settings.model, settings.mode) == (
        "http://config:1/v1",
        "from-config",
        "json",
    )
    assert settings.max_connections == 3
    assert settings.endpoint_configured

    env = {
        "OPENAI_BASE_URL": "http://env:2/v1",
        "GRADER_MODEL": "from-env",
        "GRADER_MODE": "md_json",
    }
    settings = resolve_settings(grader_home, environ=env)
    assert (settings.base_url, settings.model, settings.mode) == (
        "http://env:2/v1",
        "from-env",
        "md_json",
    )

    settings = resolve_settings(grader_home, environ=env, model="from-cli", base_url=None)
    assert settings.model == "from-cli"
    assert settings.base_url == "http://env:2/v1", "a None option leaves the lower source alone"


def test_api_key_alone_configures_openai_and_is_secret(grader_home: Path) -> None:
    settings = resolve_settings(grader_home, environ={"OPENAI_API_KEY": "sk-test-secret"})
    assert settings.endpoint_configured
    assert "sk-test-secret" not in repr(settings)
    assert "sk-test-secret" not in str(settings.public())
    assert settings.public()["api_key"] == "set"
    assert settings.redact("bad key sk-test-secret here") == "bad key *** here"


def test_reads_real_environment(grader_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADER_MODEL", "env-model")
    assert resolve_settings(grader_home).model == "env-model"


def test_timeout_from_the_environment(grader_home: Path) -> None:
    assert resolve_settings(grader_home, environ={"GRADER_TIMEOUT": "240"}).timeout == 240.0


def test_seed_false_omits_it(grader_home: Path) -> None:
    write_config(grader_home, "seed = false\n")
    assert resolve_settings(grader_home, environ={}).seed is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('modle = "x"\n', "unknown setting 'modle'"),
        ("model = \n", "config.toml"),
        ('mode = "xml"\n', "setting mode"),
        ("max_connections = 0\n", "setting max_connections"),
    ],
)
def test_bad_config_is_one_clear_error(grader_home: Path, text: str, message: str) -> None:
    write_config(grader_home, text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        resolve_settings(grader_home, environ={})


def test_settings_forbid_unknown_fields() -> None:
    with pytest.raises(ValueError, match="extra"):
        Settings.model_validate({"nope": 1})


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "'not a url' is not an http(s) URL such as http://localhost:11434/v1"),
        ("ftp://host/v1", "'ftp://host/v1' is not an http(s) URL such as"),
        ("http://[::1", "'http://[::1' is not a URL (Invalid IPv6 URL)"),
        ("http://host:abc/v1", "'http://host:abc/v1' is not a URL (Port could not be cast"),
    ],
)
def test_a_base_url_that_is_no_url_is_refused_up_front(
    grader_home: Path, url: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=r"^setting base_url: " + re.escape(message)):
        resolve_settings(grader_home, environ={"OPENAI_BASE_URL": url})
    assert resolve_settings(grader_home, base_url="http://127.0.0.1:11434/v1").base_url


def test_a_directory_named_config_toml_is_an_error(grader_home: Path) -> None:
    (grader_home / "config.toml").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"config\.toml: not a file"):
        resolve_settings(grader_home, environ={})
