"""SQLite under GRADER_HOME: a log of every LLM call and a cache of validated answers.

Schema changes are ordered migrations recorded in `_migrations`. The database is opened in WAL
mode with a busy timeout, one connection per thread, so concurrent threads and processes (an eval
run beside a practice session) can share it. Nothing secret is stored: requests are the messages
and generation parameters, never headers or keys.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.models import Usage, utc_now_iso
from grader.sqlite_wal import connect_wal

DB_NAME = "llm.sqlite3"
BUSY_TIMEOUT_MS = 10_000

MIGRATIONS: list[tuple[str, str]] = [
    (
        "001_calls",
        """
        CREATE TABLE calls (
            id INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            purpose TEXT NOT NULL,
            model TEXT NOT NULL,
            base_url TEXT NOT NULL,
            prompt_hash TEXT,
            cache_key TEXT NOT NULL,
            request TEXT NOT NULL,
            response TEXT,
            error TEXT,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            latency_ms REAL NOT NULL,
            attempts INTEGER NOT NULL,
            cached INTEGER NOT NULL
        )
        """,
    ),
    (
        "002_cache",
        """
        CREATE TABLE cache (
            key TEXT PRIMARY KEY,
            created_at TEXT NOT NULL,
            model TEXT NOT NULL,
            value TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0
        )
        """,
    ),
    ("003_calls_created_at", "CREATE INDEX calls_created_at ON calls (created_at)"),
]


def cache_key(
    *,
    model: str,
    base_url: str,
    messages: list[dict[str, Any]],
    schema: dict[str, Any],
    params: dict[str, Any],
) -> str:
    """Content address of a request: model, endpoint, messages, response schema, generation
    parameters. Concurrency, retry and timeout settings are deliberately not part of it."""
    canonical = json.dumps(
        {
            "model": model,
            "base_url": base_url.rstrip("/"),
            "messages": messages,
            "schema": schema,
            "params": params,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class CallRecord:
    """One row for the `calls` table."""

    purpose: str
    model: str
    base_url: str
    prompt_hash: str | None
    cache_key: str
    request: dict[str, Any]
    response: Any
    error: str | None
    usage: Usage
    latency_ms: float
    attempts: int
    cached: bool


@dataclass(frozen=True)
class CachedValue:
    value: dict[str, Any]
    usage: Usage


class CallLog:
    """The call log and request cache in `$GRADER_HOME/llm.sqlite3`."""

    def __init__(self, home: Path, redact: Callable[[str], str] | None = None) -> None:
        """`redact` scrubs every text stored (the API key, which a server may echo back)."""
        self.path = Path(home) / DB_NAME
        self._redact = redact or (lambda text: text)
        self._local = threading.local()
        self._ready = False
        self._setup_lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._open()
            self._local.conn = conn
        return conn

    def _open(self) -> sqlite3.Connection:
        conn = connect_wal(self.path, BUSY_TIMEOUT_MS / 1000)
        conn.execute("PRAGMA synchronous = NORMAL")
        with self._setup_lock:
            if not self._ready:
                migrate(conn)
                self._ready = True
        return conn

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    # -- cache ---------------------------------------------------------------------------------

    def get(self, key: str) -> CachedValue | None:
        row = (
            self._connection()
            .execute(
                "SELECT value, prompt_tokens, completion_tokens FROM cache WHERE key = ?", (key,)
            )
            .fetchone()
        )
        if row is None:
            return None
        return CachedValue(
            value=json.loads(row[0]),
            usage=Usage(prompt_tokens=row[1], completion_tokens=row[2]),
        )

    def put(self, key: str, model: str, value: dict[str, Any], usage: Usage) -> None:
        """Store a validated answer (callers never store failures)."""
        self._connection().execute(
            "INSERT OR REPLACE INTO cache (key, created_at, model, value, prompt_tokens, "
            "completion_tokens) VALUES (?, ?, ?, ?, ?, ?)",
            (
                key,
                utc_now_iso(),
                model,
                self._redact(json.dumps(value, ensure_ascii=False)),
                usage.prompt_tokens,
                usage.completion_tokens,
            ),
        )

    # -- log -----------------------------------------------------------------------------------

    def log(self, record: CallRecord) -> None:
        self._connection().execute(
            "INSERT INTO calls (created_at, purpose, model, base_url, prompt_hash, cache_key, "
            "request, response, error, prompt_tokens, completion_tokens, latency_ms, attempts, "
            "cached) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                utc_now_iso(),
                record.purpose,
                record.model,
                record.base_url,
                record.prompt_hash,
                record.cache_key,
                self._redact(json.dumps(record.request, ensure_ascii=False)),
                None
                if record.response is None
                else self._redact(json.dumps(record.response, default=str)),
                None if record.error is None else self._redact(record.error),
                record.usage.prompt_tokens,
                record.usage.completion_tokens,
                record.latency_ms,
                record.attempts,
                int(record.cached),
            ),
        )

    def recent(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest logged calls, newest first."""
        conn = self._connection()
        cursor = conn.execute("SELECT * FROM calls ORDER BY id DESC LIMIT ?", (limit,))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def count_calls(self) -> int:
        row = self._connection().execute("SELECT COUNT(*) FROM calls").fetchone()
        return int(row[0])


def migrate(conn: sqlite3.Connection) -> list[str]:
    """Apply pending migrations in order, inside one write transaction; returns their names."""
    conn.execute("BEGIN IMMEDIATE")  # waits on the busy timeout for other writers
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
        )
        done = {row[0] for row in conn.execute("SELECT name FROM _migrations")}
        applied = []
        for name, sql in MIGRATIONS:
            if name in done:
                continue
            conn.execute(sql)
            conn.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)", (name, utc_now_iso())
            )
            applied.append(name)
        conn.execute("COMMIT")
        return applied
    except BaseException:
        conn.execute("ROLLBACK")
        raise
