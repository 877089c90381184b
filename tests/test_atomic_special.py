"""Atomic writes meet targets that are not regular files, and check_writable probes for real."""

from __future__ import annotations

import contextlib
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.atomic import WriteError, check_writable, write_bytes_atomic, write_text_atomic


def _make_null_device(path: Path) -> None:
    """A character device like /dev/null (1, 3) at `path`, or skip where that is not allowed."""
    if os.geteuid() != 0:
        pytest.skip("creating a device node needs root")
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except OSError as exc:  # a container without CAP_MKNOD, or a nodev file system
        pytest.skip(f"mknod not permitted here: {exc.strerror or exc}")


class _FifoReader:
    """Reads everything written to a FIFO in a thread (opening it blocks until a writer comes)."""

    def __init__(self, fifo: Path) -> None:
        self.data = b""
        self._thread = threading.Thread(target=self._read, args=(fifo,), daemon=True)
        self._thread.start()

    def _read(self, fifo: Path) -> None:
        with fifo.open("rb") as handle:
            self.data = handle.read()

    def wait(self) -> bytes:
        self._thread.join(timeout=10)
        assert not self._thread.is_alive(), "nothing was written into the FIFO"
        return self.data


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_end, write_end = os.pipe()
    yield read_end, write_end
    for fd in (read_end, write_end):
        with contextlib.suppress(OSError):
            os.close(fd)


def _proc_fd(fd: int) -> Path:
    path = Path(f"/proc/self/fd/{fd}")
    if not path.exists():
        pytest.skip("no /proc/self/fd here")
    return path


def test_a_character_device_stays_a_device(tmp_path: Path) -> None:
    null = tmp_path / "mynull"
    _make_null_device(null)
    write_text_atomic(null, "x" * 10_000)
    write_bytes_atomic(null, b"\x00")
    assert stat.S_ISCHR(null.stat().st_mode)
    assert null.stat().st_rdev == os.makedev(1, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["mynull"]


def test_a_fifo_gets_the_bytes_and_stays_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "predictions.jsonl"
    os.mkfifo(fifo)
    reader = _FifoReader(fifo)
    write_text_atomic(fifo, '{"id": 1}\n')
    assert reader.wait() == b'{"id": 1}\n'
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["predictions.jsonl"]


def test_a_symlink_to_a_fifo_is_written_through(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "out.jsonl"
    link.symlink_to(fifo)
    reader = _FifoReader(fifo)
    write_bytes_atomic(link, b"through the link\n")
    assert reader.wait() == b"through the link\n"
    assert link.is_symlink()
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "out.jsonl"]


def test_a_link_to_proc_self_fd_of_a_pipe_works(tmp_path: Path, pipe: tuple[int, int]) -> None:
    """`--out /dev/stdout` when stdout is a pipe: /dev/stdout -> /proc/self/fd/1 -> pipe:[N],
    a name that resolving would turn into a path that cannot be opened."""
    read_end, write_end = pipe
    stdout_like = tmp_path / "stdout"
    stdout_like.symlink_to(_proc_fd(write_end))
    write_text_atomic(stdout_like, "to the pipe\n")
    write_text_atomic(Path(f"/dev/fd/{write_end}"), "and again\n")
    os.close(write_end)
    with os.fdopen(read_end, "rb", closefd=False) as handle:
        assert handle.read() == b"to the pipe\nand again\n"
    assert stdout_like.is_symlink()


def test_a_descriptor_redirected_to_a_file_is_appended_to_not_replaced(tmp_path: Path) -> None:
    """`--out /dev/stdout >> log`: the log keeps what it had, and stays the same file."""
    log = tmp_path / "log.txt"
    log.write_text("earlier\n", encoding="utf-8")
    inode = log.stat().st_ino
    fd = os.open(log, os.O_WRONLY | os.O_APPEND)
    try:
        write_text_atomic(_proc_fd(fd), "predictions\n")
    finally:
        os.close(fd)
    assert log.read_text(encoding="utf-8") == "earlier\npredictions\n"
    assert log.stat().st_ino == inode
    assert [p.name for p in tmp_path.iterdir()] == ["log.txt"]


def test_a_descriptor_open_only_for_reading_is_a_write_error(pipe: tuple[int, int]) -> None:
    read_end, _ = pipe
    target = Path(f"/dev/fd/{read_end}")
    with pytest.raises(WriteError, match=f"^{target}: cannot write \\(.*reading\\)$"):
        check_writable(target)
    with pytest.raises(WriteError, match=f"^{target}: cannot write"):
        write_text_atomic(target, "x")


def test_a_regular_file_is_still_replaced_atomically(tmp_path: Path) -> None:
    deck = tmp_path / "deck.yaml"
    deck.write_text("old\n", encoding="utf-8")
    reader = deck.open(encoding="utf-8")  # a reader that opened the old version keeps it
    inode = deck.stat().st_ino
    try:
        write_text_atomic(deck, "new\n")
        assert reader.read() == "old\n"
    finally:
        reader.close()
    assert deck.read_text(encoding="utf-8") == "new\n"
    assert deck.stat().st_ino != inode
    assert stat.S_ISREG(deck.stat().st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["deck.yaml"]


def test_check_writable_under_sys_fails_now_and_leaves_nothing() -> None:
    if not os.path.ismount("/sys"):
        pytest.skip("/sys is not mounted")
    if os.geteuid() != 0:
        pytest.skip("for others os.access already refuses /sys; the probe matters for root")
    before = set(os.listdir("/sys"))
    out = Path("/sys/grader-test-predictions.jsonl")
    with pytest.raises(WriteError, match=f"^{out}: cannot write"):
        check_writable(out)
    report = Path("/sys/grader-test-report")
    with pytest.raises(WriteError, match=f"^{report}: cannot write"):
        check_writable(report, directory=True)
    nested = Path("/sys/grader-test-dir/out.jsonl")
    with pytest.raises(WriteError, match=f"^{nested}: cannot write"):
        check_writable(nested)
    assert set(os.listdir("/sys")) == before


def test_check_writable_in_a_tmp_dir_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    check_writable(tmp_path / "out.jsonl")
    check_writable(tmp_path / "missing" / "parents" / "out.jsonl")
    check_writable(tmp_path, directory=True)
    check_writable(tmp_path / "new-report", directory=True)
    check_writable(Path("relative-out.jsonl"))
    (tmp_path / "existing.jsonl").write_text("keep\n", encoding="utf-8")
    check_writable(tmp_path / "existing.jsonl")
    assert [p.name for p in tmp_path.iterdir()] == ["existing.jsonl"]
    assert (tmp_path / "existing.jsonl").read_text(encoding="utf-8") == "keep\n"


def test_check_writable_accepts_a_fifo_without_waiting_for_a_reader(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    link = tmp_path / "link"
    link.symlink_to(fifo)
    check_writable(fifo)  # opening it for writing would block: there is no reader
    check_writable(link)
    with pytest.raises(WriteError, match="is not a directory"):
        check_writable(fifo, directory=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo", "link"]


def test_check_writable_accepts_a_device(tmp_path: Path) -> None:
    null = tmp_path / "mynull"
    _make_null_device(null)
    check_writable(null)
    assert [p.name for p in tmp_path.iterdir()] == ["mynull"]


def test_check_writable_accepts_a_descriptor_open_for_writing(pipe: tuple[int, int]) -> None:
    check_writable(Path(f"/dev/fd/{pipe[1]}"))
    check_writable(_proc_fd(pipe[1]))


def test_a_symlink_loop_is_one_line(tmp_path: Path) -> None:
    os.symlink(tmp_path / "b", tmp_path / "a")
    os.symlink(tmp_path / "a", tmp_path / "b")
    with pytest.raises(WriteError, match=r"a: cannot write \(a symlink loop\)$"):
        check_writable(tmp_path / "a")
    with pytest.raises(WriteError, match=r"a: cannot write \(a symlink loop\)$"):
        write_text_atomic(tmp_path / "a", "x")
