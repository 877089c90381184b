"""Atomic file writes: a temp file in the same directory, fsync, then rename over the target.

A symlink is written through (its target is replaced). A replaced file keeps its permissions; a
new one gets what `open()` would give it (0666 less the umask), not the owner-only mode of the
temp file. A file that cannot be written is a `WriteError` naming it, and leaves no temp file
behind.

Only regular files (and new ones) are replaced. A target that is a device or a FIFO, or a name
for one of this process's open descriptors (`/dev/stdout`, `/dev/fd/3`, `/proc/self/fd/1`), has
no old version to protect and is written directly: replacing it (as root) would turn
`/dev/null` into a file, and replacing the file behind a `> out` or `>> log` redirection would
write the wrong file.
"""

from __future__ import annotations

import fcntl
import os
import re
import stat
import sys
import tempfile
from pathlib import Path

from grader.errors import GraderError

_UMASK_LINE = re.compile(r"^Umask:\s*([0-7]+)$", re.MULTILINE)
# A name for an open descriptor: /dev/fd/N, /proc/self/fd/N, /proc/<pid>/fd/N.
_DESCRIPTOR_PATH = re.compile(r"^/(?:dev|proc/(self|thread-self|\d+))/fd/(\d+)$")
_MAX_LINKS = 40  # as the kernel's limit on symlinks followed in one lookup


class WriteError(GraderError):
    """A file the user asked for (a deck, an export, an eval output) could not be written."""


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so readers see either the old file or the new one, never half."""
    _write_atomic(Path(path), text.encode("utf-8"))


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Binary counterpart of write_text_atomic."""
    _write_atomic(Path(path), data)


def _write_atomic(path: Path, data: bytes) -> None:
    descriptor = _own_descriptor(path)
    if descriptor is not None:
        _write_descriptor(path, descriptor, data)
        return
    if _is_special(path):
        _write_special(path, data)
        return
    path = real_path(path)  # through a symlink: replacing the link would leave its target stale
    directory = path.parent if str(path.parent) else Path(".")
    _check_target(path, directory=False)  # the write itself is the probe
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


def _write_special(path: Path, data: bytes) -> None:
    """Write into a device or FIFO as `> path` would (blocking until a FIFO has a reader)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOCTTY)  # no O_CREAT: it exists; no O_TRUNC
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
    except OSError as exc:
        raise WriteError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def _write_descriptor(path: Path, fd: int, data: bytes) -> None:
    """Write to this process's open descriptor `fd`, which `path` names, at its own offset: a
    shell's `>` or `>>` redirection is honoured, and a socket (which cannot be reopened) works."""
    for stream in (sys.stdout, sys.stderr):  # keep order with what was printed before
        try:
            if stream is not None and stream.fileno() == fd:
                stream.flush()
        except (OSError, ValueError):
            pass  # not backed by a descriptor (as under a test runner), or closed
    try:
        _check_descriptor(fd)
        _write_all(fd, data)
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fsync(fd)
    except OSError as exc:
        raise WriteError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _own_descriptor(path: Path) -> int | None:
    """The descriptor of this process that `path` names, directly or through symlinks."""
    name = os.path.abspath(path)
    for _ in range(_MAX_LINKS):
        match = _DESCRIPTOR_PATH.match(name)
        if match is not None:
            owner = match.group(1)
            if owner is None or owner in {"self", "thread-self", str(os.getpid())}:
                return int(match.group(2))
            return None
        try:
            link = os.readlink(name)
        except OSError:  # not a symlink, or not there
            return None
        name = os.path.normpath(os.path.join(os.path.dirname(name), link))
    return None


def _is_special(path: Path) -> bool:
    """Whether `path` (symlinks followed) exists and is neither a regular file nor a directory."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _check_descriptor(fd: int) -> None:
    """Raise OSError unless `fd` is open for writing."""
    try:
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    except OSError as exc:
        raise OSError(exc.errno, f"descriptor {fd} is not open") from exc
    if flags & os.O_ACCMODE == os.O_RDONLY:
        raise OSError(0, f"descriptor {fd} is open only for reading")


def real_path(path: Path) -> Path:
    """`path`, or the file it links to when it is a symlink (other paths are left as given)."""
    path = Path(path)
    if not path.is_symlink():
        return path
    try:
        return path.resolve(strict=False)
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise WriteError(f"{path}: cannot write (a symlink loop)") from exc


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
    path that is a directory (or the reverse), or a place where a file (or the directory) cannot
    be created. Call before long work whose output goes there.

    The check is real where it is cheap: a temp file is created and removed in the directory the
    output goes to or, when that directory does not exist yet, a temp directory in its nearest
    existing ancestor (so root, whom `os.access` always answers yes, learns of /sys or a read-only
    mount now). A device or FIFO is checked with `os.access`, never opened (opening a FIFO
    waits for a reader), and a name for an open descriptor by its access mode."""
    path = Path(path)
    if not directory:
        descriptor = _own_descriptor(path)
        if descriptor is not None:
            try:
                _check_descriptor(descriptor)
            except OSError as exc:
                raise WriteError(f"{path}: cannot write ({exc.strerror or exc})") from None
            return
        if _is_special(path):
            if not os.access(path, os.W_OK):
                raise WriteError(f"{path}: cannot write (not writable)")
            return
        path_written = real_path(path)
    else:
        path_written = path
    probe_in = _check_target(path_written, directory=directory, name=path)
    try:
        if probe_in == (path_written if directory else path_written.parent):
            fd, probe = tempfile.mkstemp(prefix=".grader-probe-", suffix=".tmp", dir=probe_in)
            try:
                os.close(fd)
            finally:
                os.unlink(probe)
        else:  # the directory is to be created: try creating one there
            os.rmdir(tempfile.mkdtemp(prefix=".grader-probe-", suffix=".tmp", dir=probe_in))
    except OSError as exc:
        raise WriteError(f"{path}: cannot write ({exc.strerror or exc})") from None


def _check_target(path: Path, *, directory: bool, name: Path | None = None) -> Path:
    """The checks of check_writable that touch nothing, naming `name` (default `path`) in the
    error; returns the nearest existing directory the output goes to."""
    name = path if name is None else name
    if path.exists() and path.is_dir() != directory:
        what = "is a directory; give a file name" if not directory else "is not a directory"
        raise WriteError(f"{name}: {what}")
    parent = path if directory and path.exists() else path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise WriteError(f"{name}: cannot write ({parent} is not a directory)")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise WriteError(f"{name}: cannot write ({parent} is not writable)")
    return parent
