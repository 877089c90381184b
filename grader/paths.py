"""Where grader keeps its own files: one override variable, GRADER_HOME."""

from __future__ import annotations

import os
from pathlib import Path

HOME_VARIABLE = "GRADER_HOME"


def grader_home(environ: dict[str, str] | None = None) -> Path:
    """The user data directory: `$GRADER_HOME`, else the platform's user data dir. Not created."""
    env = os.environ if environ is None else environ
    override = env.get(HOME_VARIABLE)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_path

    return user_data_path("grader", appauthor=False)


def ensure_home(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    return home
