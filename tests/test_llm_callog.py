"""The SQLite call log and request cache: migrations, cache keys, concurrent writers."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from pathlib import Path

import pytest

from grader.llm.callog import DB_NAME, MIGRATIONS, CallLog, CallRecord, cache_key, migrate
from grader.models import Usage
from grader.sqlite_wal import connect_wal

BASE = {
    "model": "m",
    "base_url": "http://x/v1",
    "messages": [{"role": "user", "content": "hi"}],
    "schema": {"title": "S"},
    "params": {"temperature": 0.0, "seed": 1},
}


def record(i: int = 0) -> CallRecord:
    return CallRecord(
        purpose="grade",
        model="m",
        base_url="http://x/v1",
        prompt_hash="abc",
        cache_key=f"k{i}",
        request={"messages": [{"role": "user", "content": f"q{i}"}]},
        response={"value": {"ok": True}},
        error=None,
        usage=Usage(prompt_tokens=3, completion_tokens=2),
        latency_ms=1.5,
        attempts=1,
        cached=False,
    )


def test_cache_key_covers_request_content_only() -> None:
    key = cache_key(**BASE)  # type: ignore[arg-type]
    assert key == cache_key(**{**BASE, "base_url": "http://x/v1/"})  # type: ignore[arg-type]
    for field, value in [
        ("model", "other"),
        ("base_url", "http://y/v1"),
        ("messages", [{"role": "user", "content": "hi!"}]),
        ("schema", {"title": "T"}),
        ("params", {"temperature": 0.5, "seed": 1}),
    ]:
        assert cache_key(**{**BASE, field: value}) != key, field  # type: ignore[arg-type]


def test_migrations_apply_once_in_order(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "db.sqlite3", isolation_level=None)
    assert migrate(conn) == [name for name, _ in MIGRATIONS]
    assert migrate(conn) == []
    names = [row[0] for row in conn.execute("SELECT name FROM _migrations ORDER BY rowid")]
    assert names == [name for name, _ in MIGRATIONS]
    conn.close()


def test_log_cache_roundtrip_and_wal(grader_home: Path) -> None:
    log = CallLog(grader_home)
    log.log(record())
    log.put("k", "m", {"a": 1}, Usage(prompt_tokens=5, completion_tokens=1))
    hit = log.get("k")
    assert hit is not None and hit.value == {"a": 1} and hit.usage.prompt_tokens == 5
    assert log.get("missing") is None
    [row] = log.recent()
    assert row["purpose"] == "grade" and row["prompt_tokens"] == 3 and row["cached"] == 0
    mode = sqlite3.connect(grader_home / DB_NAME).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    log.close()


def test_threads_share_one_log(grader_home: Path) -> None:
    log = CallLog(grader_home)

    def work(offset: int) -> None:
        for i in range(25):
            log.log(record(offset + i))
            log.put(f"k{offset + i}", "m", {"i": offset + i}, Usage())
        log.close()

    threads = [threading.Thread(target=work, args=(n * 100,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert log.count_calls() == 100


def _write_many(home: str, offset: int) -> None:
    log = CallLog(Path(home))
    for i in range(30):
        log.log(record(offset + i))
    log.close()


def test_processes_share_one_log(grader_home: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_write_many, args=(str(grader_home), n * 100)) for n in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=30)
    assert [p.exitcode for p in procs] == [0, 0, 0]
    log = CallLog(grader_home)
    assert log.count_calls() == 90
    log.close()


def open_at_once(log: CallLog, threads: int) -> list[BaseException]:
    """Errors from `threads` threads making their first call to `log` at the same moment."""
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def first_call() -> None:
        start.wait()
        try:
            assert log.count_calls() == 0
        except BaseException as error:
            errors.append(error)

    running = [threading.Thread(target=first_call) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join()
    return errors


def test_threads_opening_a_fresh_log_at_once_all_succeed(tmp_path: Path) -> None:
    # Switching a new database to WAL fails at once, without the busy timeout, while another
    # connection holds a lock: this used to fail about one run in four.
    for round_ in range(15):
        assert open_at_once(CallLog(tmp_path / str(round_)), threads=8) == []


def test_connect_wal_waits_for_a_lock_held_elsewhere(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    released = threading.Timer(0.3, lambda: holder.execute("COMMIT"))
    released.start()
    conn = connect_wal(path, timeout_s=10)
    released.join()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    holder.close()


def test_connect_wal_gives_up_after_its_timeout(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        connect_wal(path, timeout_s=0.2)
    holder.close()
