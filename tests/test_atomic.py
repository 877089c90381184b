"""Atomic writes: the permissions a user expects, one-line errors for paths it cannot write."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from grader.atomic import WriteError, check_writable, write_bytes_atomic, write_text_atomic


@pytest.fixture
def umask_022() -> Iterator[None]:
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_a_new_file_gets_the_umask_mode_not_owner_only(tmp_path: Path, umask_022: None) -> None:
    write_text_atomic(tmp_path / "deck.yaml", "cards: []\n")
    write_bytes_atomic(tmp_path / "deck.apkg", b"\x00\x01")
    assert (tmp_path / "deck.yaml").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "deck.apkg").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "deck.yaml").read_text(encoding="utf-8") == "cards: []\n"


def test_a_replaced_file_keeps_its_mode(tmp_path: Path, umask_022: None) -> None:
    private = tmp_path / "private.yaml"
    private.write_text("old\n", encoding="utf-8")
    private.chmod(0o600)
    write_text_atomic(private, "new\n")
    assert private.stat().st_mode & 0o777 == 0o600
    assert private.read_text(encoding="utf-8") == "new\n"


def test_text_is_written_byte_for_byte(tmp_path: Path) -> None:
    write_text_atomic(tmp_path / "crlf.txt", "a\r\nb\n")
    assert (tmp_path / "crlf.txt").read_bytes() == b"a\r\nb\n"


def test_a_directory_is_no_file_name(tmp_path: Path) -> None:
    with pytest.raises(WriteError, match=f"^{tmp_path}: is a directory; give a file name$"):
        write_text_atomic(tmp_path, "x")
    assert list(tmp_path.iterdir()) == []


def test_a_file_in_the_way_of_the_parent_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("keep me\n", encoding="utf-8")
    with pytest.raises(WriteError, match="blocker is not a directory"):
        write_text_atomic(blocker / "sub" / "out.csv", "x")
    assert blocker.read_text(encoding="utf-8") == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]


def test_missing_parents_are_created(tmp_path: Path) -> None:
    write_text_atomic(tmp_path / "a" / "b" / "out.csv", "x")
    assert (tmp_path / "a" / "b" / "out.csv").read_text(encoding="utf-8") == "x"


def test_check_writable_for_directories(tmp_path: Path) -> None:
    check_writable(tmp_path / "new-report", directory=True)
    check_writable(tmp_path, directory=True)
    (tmp_path / "file").write_text("", encoding="utf-8")
    with pytest.raises(WriteError, match="is not a directory"):
        check_writable(tmp_path / "file", directory=True)


def test_a_symlink_is_written_through(tmp_path: Path) -> None:
    target = tmp_path / "real.yaml"
    target.write_text("old\n", encoding="utf-8")
    link = tmp_path / "link.yaml"
    link.symlink_to(target)
    write_text_atomic(link, "new\n")
    assert link.is_symlink()
    assert target.read_text(encoding="utf-8") == "new\n"
