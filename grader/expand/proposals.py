"""The proposals file beside a deck (`decks/NAME.proposals.yaml`) and the lock shared with the deck.

Proposals are plain YAML so they can be reviewed in git too. Every read-modify-write of a deck and
its proposals happens inside `deck_lock`, an exclusive `fcntl.flock` on a hidden lock file beside
the deck, with both files re-read inside the lock: two reviewers never lose each other's work.
"""

from __future__ import annotations

import fcntl
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError

from grader import yamlfile
from grader.atomic import real_path, write_text_atomic
from grader.deckfile import PROPOSALS_SUFFIX, read_text_file
from grader.errors import InputError, NotFoundError
from grader.models import CardProposal, Strict

FORMAT_VERSION = 1
HEADER = (
    "# grader proposals: pending cards for the deck beside this file.\n"
    "# Review with `grader review DECK`; nothing here is in the deck until approved.\n"
)
_NORMALISE = re.compile(r"[^a-z0-9]+")


class ProposalSet(Strict):
    """Everything proposed for one deck: pending, approved and rejected (kept to stay out)."""

    deck: str
    """File name of the deck these proposals belong to."""
    proposals: list[CardProposal] = Field(default_factory=list)
    """In the order they were proposed."""

    def get(self, proposal_id: str) -> CardProposal | None:
        return next((p for p in self.proposals if p.id == proposal_id), None)

    def require(self, proposal_id: str) -> CardProposal:
        found = self.get(proposal_id)
        if found is None:
            raise NotFoundError(f"no proposal {proposal_id!r} for deck {self.deck}")
        return found

    def replace(self, proposal: CardProposal) -> None:
        for index, existing in enumerate(self.proposals):
            if existing.id == proposal.id:
                self.proposals[index] = proposal
                return
        raise NotFoundError(f"no proposal {proposal.id!r} for deck {self.deck}")

    def with_status(self, status: str) -> list[CardProposal]:
        return [p for p in self.proposals if p.status == status]


def new_proposal_id() -> str:
    """A fresh random proposal id (not derived from the text)."""
    return "p" + secrets.token_hex(4)


def normalise(text: str) -> str:
    """Lower-case alphanumerics only: the key for exact-text matching of questions."""
    return " ".join(_NORMALISE.sub(" ", text.lower()).split())


def proposals_path(deck_path: Path) -> Path:
    """`decks/NAME.yaml` -> `decks/NAME.proposals.yaml` (beside the real deck, for a symlink)."""
    deck_path = real_path(deck_path)
    return deck_path.with_name(deck_path.stem + PROPOSALS_SUFFIX)


def lock_path(deck_path: Path) -> Path:
    """The hidden lock file beside a deck (never committed; see .gitignore); beside the real
    file for a symlink, so two paths to one deck take one lock."""
    deck_path = real_path(deck_path)
    return deck_path.with_name(f".{deck_path.name}.lock")


@contextmanager
def deck_lock(deck_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on a deck and its proposals for one read-modify-write."""
    path = lock_path(deck_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def load_proposals(deck_path: Path) -> ProposalSet:
    """The proposals for a deck; an empty set when there is no proposals file yet."""
    path = proposals_path(deck_path)
    if not path.exists():
        return ProposalSet(deck=Path(deck_path).name)
    text = read_text_file(path)
    data = yamlfile.parse(text, path)
    if data is None:
        return ProposalSet(deck=Path(deck_path).name)
    if not isinstance(data, dict):
        raise InputError("a proposals file must be a mapping with `proposals`", path=path, line=1)
    version = data.pop("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        raise InputError(f"unsupported proposals version {version!r}", path=path, line=1)
    data.setdefault("deck", Path(deck_path).name)
    data["proposals"] = data.get("proposals") or []
    try:
        store = ProposalSet.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"])
        line = _line_of(text, error["loc"])
        raise InputError(f"{field}: {error['msg']}", path=path, line=line) from None
    first_index: dict[str, int] = {}
    for index, proposal in enumerate(store.proposals):
        if proposal.id in first_index:  # refused before anything is written from this file
            first = _line_of(text, ("proposals", first_index[proposal.id]))
            raise InputError(
                f"duplicate proposal id {proposal.id!r} (first at line {first})",
                path=path,
                line=_line_of(text, ("proposals", index)),
            )
        first_index[proposal.id] = index
    return store


def _line_of(text: str, loc: tuple[int | str, ...]) -> int:
    """Best-effort line of the n-th proposal named in a validation error location."""
    if len(loc) < 2 or loc[0] != "proposals" or not isinstance(loc[1], int):
        return 1
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    for key, value in getattr(root, "value", []):
        is_list = key.value == "proposals" and isinstance(value, yaml.SequenceNode)
        if is_list and loc[1] < len(value.value):
            return int(value.value[loc[1]].start_mark.line) + 1
    return 1


class _Dumper(yaml.SafeDumper):
    """Block style with literal blocks for multi-line text, as in deck files."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _represent_str)


def dump_proposals(proposals: ProposalSet) -> str:
    """The canonical text of a proposals file."""
    document: dict[str, Any] = {"version": FORMAT_VERSION, "deck": proposals.deck}
    document["proposals"] = [
        p.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        | {"id": p.id, "status": p.status}
        for p in proposals.proposals
    ]
    for item in document["proposals"]:
        # Keep the id first and status near the top for readable diffs.
        ordered = {"id": item.pop("id"), "status": item.pop("status")}
        ordered.update(item)
        item.clear()
        item.update(ordered)
    return HEADER + dump_yaml(document)


def dump_yaml(document: object) -> str:
    """Block-style YAML with literal blocks for multi-line text (readable in diffs and editors)."""
    return yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        width=1_000_000,
        default_flow_style=False,
        indent=2,
    )


def save_proposals(deck_path: Path, proposals: ProposalSet) -> None:
    """Write the proposals file atomically. Callers hold `deck_lock`."""
    ids = [p.id for p in proposals.proposals]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise InputError(f"duplicate proposal ids: {', '.join(duplicates)}", path=deck_path)
    write_text_atomic(proposals_path(deck_path), dump_proposals(proposals))
