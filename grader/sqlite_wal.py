"""Opening the project's SQLite databases in WAL mode, safely when many open them at once."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from grader.atomic import WriteError, check_writable
from grader.errors import GraderError

LOCKED_RETRY_S = 0.05


def connect_wal(path: Path, timeout_s: float) -> sqlite3.Connection:
    """An autocommit connection to `path` in WAL mode that waits up to `timeout_s` for locks.

    Switching a new database to WAL takes an exclusive lock, and SQLite fails that at once with
    "database is locked" instead of waiting on the busy timeout, so threads or processes that
    open a fresh database together would fail: the switch is retried for up to `timeout_s`."""
    try:
        check_writable(path.parent, directory=True)
        path.parent.mkdir(parents=True, exist_ok=True)
    except WriteError as exc:
        raise GraderError(f"{exc}; set GRADER_HOME to a directory you can write") from None
    except OSError as exc:
        raise GraderError(
            f"{path.parent}: cannot create it ({exc.strerror or exc}); "
            "set GRADER_HOME to a directory you can write"
        ) from None
    conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return conn
        except sqlite3.OperationalError as error:
            if "locked" not in str(error):
                conn.close()
                raise _unusable(path, error) from None
            if time.monotonic() >= deadline:
                conn.close()
                raise
            time.sleep(LOCKED_RETRY_S)
        except sqlite3.DatabaseError as error:  # "file is not a database"
            conn.close()
            raise _unusable(path, error) from None


def _unusable(path: Path, error: sqlite3.Error) -> GraderError:
    return GraderError(f"{path}: not a usable database ({error}); move it aside to start afresh")
