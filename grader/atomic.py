"""Atomic file writes: a temp file in the same directory, fsync, then rename over the target.

A symlink is written through (its target is replaced). A replaced file keeps its permissions; a
new one gets what `open()` would give it (0666 less the umask), not the owner-only mode of the
temp file. A file that cannot be written is a `WriteError` naming it, and leaves no temp file
behind.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from grader.errors import GraderError

_UMASK_LINE = re.compile(r"^Umask:\s*([0-7]+)$", re.MULTILINE)


class WriteError(GraderError):
    """A file the user asked for (a deck, an export, an eval output) could not be written."""


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so readers see either the old file or the new one, never half."""
    _write_atomic(Path(path), text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Binary counterpart of write_text_atomic."""
    _write_atomic(Path(path), data)


def _write_atomic(path: Path, data: bytes) -> None:
    path = real_path(path)  # through a symlink: replacing the link would leave its target stale
    directory = path.parent if str(path.parent) else Path(".")
    check_writable(path)
    tmp_name: str | None = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_umask()
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except OSError as exc:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
        raise WriteError(f"{path}: cannot write ({exc.strerror or exc})") from exc
    except BaseException:
        if tmp_name is not None:
            Path(tmp_name).unlink(missing_ok=True)
        raise


def real_path(path: Path) -> Path:
    """`path`, or the file it links to when it is a symlink (other paths are left as given)."""
    path = Path(path)
    return path.resolve() if path.is_symlink() else path


def _umask() -> int:
    """The process umask, read without changing it where Linux reports it."""
    try:
        match = _UMASK_LINE.search(Path("/proc/self/status").read_text(encoding="ascii"))
    except OSError:
        match = None
    if match is not None:
        return int(match.group(1), 8)
    current = os.umask(0o022)  # elsewhere the only way to read it is to set it
    os.umask(current)
    return current


def check_writable(path: Path, *, directory: bool = False) -> None:
    """Fail now, with a WriteError naming `path`, when it could not be written later: a file
    path that is a directory (or the reverse), or a nearest existing parent that is not a
    writable directory. Call before long work whose output goes there."""
    path = Path(path)
    if path.exists() and path.is_dir() != directory:
        what = "is a directory; give a file name" if not directory else "is not a directory"
        raise WriteError(f"{path}: {what}")
    parent = path if directory and path.exists() else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise WriteError(f"{path}: cannot write ({parent} is not a directory)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise WriteError(f"{path}: cannot write ({parent} is not writable)")
