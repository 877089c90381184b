"""Eval datasets: JSON Lines of recorded learner responses with human grades.

Required fields per line: question, reference_answer, student_answer, score, score_max (see
`grader.models.EvalRecord`). A bad line is reported as `file:line: message` and skipped, or fails
the load when `strict`.
"""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from grader.errors import InputError, first_error
from grader.models import Card, EvalRecord


class DatasetFile(BaseModel):
    """One input file of a run, identified by its content hash."""

    model_config = ConfigDict(extra="forbid")

    path: str
    """The path as given (resolved to absolute)."""
    name: str
    """Short name used to slice metrics per dataset (the file stem, made unique)."""
    sha256: str
    """SHA-256 of the file's bytes."""
    records: int
    """Lines loaded."""
    skipped: int
    """Bad lines skipped."""


@dataclass(frozen=True)
class EvalItem:
    """One response to grade: where it came from and what it says."""

    key: str
    """Unique within a run: `<dataset name>:<line>`."""
    dataset: str
    line: int
    record: EvalRecord

    @property
    def display_id(self) -> str | int:
        """The record's own id (a string or an integer, as given), or its line number."""
        return self.record.id if self.record.id is not None else self.line


@dataclass
class LoadedData:
    items: list[EvalItem] = field(default_factory=list)
    files: list[DatasetFile] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """`file:line: message` for every skipped line."""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _validation_message(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    if first["type"] == "missing":
        return f"missing required field {where!r}"
    if where.split(".")[0] == "id":  # one error per member of the union: say it once
        return "field 'id': must be a string or an integer"
    if not where:  # a check across fields states its own fields
        return first_error(exc, "record")[1]
    return f"field {where!r}: {first['msg']}"


def parse_line(text: str) -> EvalRecord:
    """One JSONL line as an EvalRecord; ValueError with a short message when it is not one."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")
    try:
        record = EvalRecord.model_validate(data)
    except ValidationError as exc:
        raise ValueError(_validation_message(exc)) from None
    for name in ("question", "reference_answer"):
        if not getattr(record, name).strip():
            raise ValueError(f"field {name!r} is empty")
    return record


def _read_lines(path: Path) -> list[bytes]:
    """The file's lines as bytes (a leading UTF-8 byte-order mark dropped), decoded one by one
    so that a line that is not UTF-8 is a bad line like any other."""
    if path.is_dir():
        raise InputError("is a directory, not a dataset file", path=path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except OSError as exc:
        raise InputError(exc.strerror or "cannot read", path=path) from None
    return data.removeprefix(codecs.BOM_UTF8).split(b"\n")


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None


def _names(paths: Sequence[Path]) -> list[str]:
    stems = [p.stem for p in paths]
    return [stem if stems.count(stem) == 1 else f"{stem}#{i + 1}" for i, stem in enumerate(stems)]


def load_datasets(
    paths: Sequence[Path], *, strict: bool = False, limit: int | None = None
) -> LoadedData:
    """Load every file in order; `limit` keeps the first N valid records overall."""
    loaded = LoadedData()
    for path, name in zip(paths, _names(paths), strict=True):
        path = Path(path)
        lines = _read_lines(path)
        count = skipped = 0
        for number, raw in enumerate(lines, start=1):
            try:
                text = _decode(raw)
                if not text.strip():
                    continue
                record = parse_line(text)
            except ValueError as exc:
                if strict:
                    raise InputError(str(exc), path=path, line=number) from None
                loaded.problems.append(f"{path}:{number}: {exc}")
                skipped += 1
                continue
            if limit is None or len(loaded.items) < limit:
                loaded.items.append(EvalItem(f"{name}:{number}", name, number, record))
                count += 1
        loaded.files.append(
            DatasetFile(
                path=str(path.resolve()),
                name=name,
                sha256=sha256_file(path),
                records=count,
                skipped=skipped,
            )
        )
    return loaded


def card_for(record: EvalRecord) -> Card:
    """The card a recorded response answers: same question, reference, footnote and rubric."""
    digest = hashlib.sha256(
        json.dumps([record.question, record.reference_answer], ensure_ascii=False).encode()
    ).hexdigest()
    return Card(
        id=f"e{digest[:12]}",
        question=record.question,
        answer=record.reference_answer,
        footnote=record.footnote,
        rubric=list(record.rubric or []),
        rubric_source="author" if record.rubric else None,
    )
