"""Deck files: YAML on disk, one deck per file, loaded with line numbers and saved atomically.

The writer is canonical (fixed key order, literal blocks for multi-line text, no line folding), so
a file it wrote loads and saves back byte for byte, and a hand edit shows up as a small diff.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from grader import yamlfile
from grader.atomic import write_text_atomic
from grader.errors import DeckError, InputError
from grader.models import Card, Deck

FORMAT_VERSION = 1
DECK_SUFFIXES = (".yaml", ".yml")
PROPOSALS_SUFFIX = ".proposals.yaml"
HEADER = "# grader deck: edit freely; keep each card's id. Validate with `grader deck check`.\n"


@dataclass(frozen=True)
class Problem:
    """One validation problem, reported as `path:line: message`."""

    path: Path
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class LoadedDeck:
    """A deck plus where each card starts in its file (1-based line numbers)."""

    path: Path
    deck: Deck
    card_lines: dict[str, int]


def is_deck_file(path: Path) -> bool:
    return path.suffix in DECK_SUFFIXES and not path.name.endswith(PROPOSALS_SUFFIX)


def read_text_file(path: Path) -> str:
    """Read a UTF-8 text file, turning every OS/encoding failure into one clear InputError."""
    path = Path(path)
    if path.is_dir():
        raise InputError("is a directory, not a file", path=path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except OSError as exc:
        raise InputError(exc.strerror or str(exc), path=path) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x})", path=path, line=line
        ) from None


def check_deck(path: Path) -> tuple[LoadedDeck | None, list[Problem]]:
    """Parse and validate a deck file, collecting every problem instead of stopping at the first."""
    path = Path(path)
    text = read_text_file(path)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data: dict[str, Any] = yamlfile.load(text)
    except (yaml.YAMLError, RecursionError) as exc:
        line, message = yamlfile.error_at(exc)
        return None, [Problem(path, line, message)]
    if not isinstance(root, yaml.MappingNode) or not isinstance(data, dict):
        return None, [Problem(path, 1, "a deck file must be a mapping with `name` and `cards`")]

    problems: list[Problem] = []
    fields = {str(key.value): (key, value) for key, value in root.value}
    version = data.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        line = fields["version"][0].start_mark.line + 1
        problems.append(Problem(path, line, f"unsupported deck version {version!r}"))
    unknown = sorted(set(data) - {"version", "name", "description", "cards"})
    for key in unknown:
        problems.append(Problem(path, fields[key][0].start_mark.line + 1, f"unknown field {key!r}"))
    if not isinstance(data.get("name"), str) or not data["name"].strip():
        problems.append(Problem(path, 1, "field `name` is required"))

    raw_cards = data.get("cards") or []
    card_nodes: list[yaml.Node] = []
    if "cards" in fields:
        node = fields["cards"][1]
        if isinstance(node, yaml.SequenceNode):
            card_nodes = list(node.value)
        elif data.get("cards") is not None:
            problems.append(Problem(path, node.start_mark.line + 1, "`cards` must be a list"))
            raw_cards = []

    cards: list[Card] = []
    card_lines: dict[str, int] = {}
    seen_ids: dict[str, int] = {}
    for raw, node in zip(raw_cards, card_nodes, strict=True):
        line = node.start_mark.line + 1
        if not isinstance(raw, dict):
            problems.append(Problem(path, line, "each card must be a mapping"))
            continue
        raw_id = raw.get("id")
        if isinstance(raw_id, str) and raw_id in seen_ids:
            first = seen_ids[raw_id]
            problems.append(
                Problem(path, line, f"duplicate card id {raw_id!r} (first at line {first})")
            )  # and on to its other problems, so one `deck check` lists them all
        elif isinstance(raw_id, str):
            seen_ids[raw_id] = line
        try:
            card = Card.model_validate(raw)
        except ValidationError as exc:
            for error in exc.errors():
                field = ".".join(str(part) for part in error["loc"]) or "card"
                field_line = _field_line(node, error["loc"]) or line
                label = raw_id if raw_id is not None else "?"
                problems.append(Problem(path, field_line, f"card {label}: {field}: {error['msg']}"))
            continue
        card_lines[card.id] = line
        cards.append(card)

    if problems:
        return None, problems
    deck = Deck(name=data["name"], description=data.get("description"), cards=cards)
    return LoadedDeck(path=path, deck=deck, card_lines=card_lines), []


def _field_line(card_node: yaml.Node, loc: tuple[int | str, ...]) -> int | None:
    if not loc or not isinstance(card_node, yaml.MappingNode):
        return None
    for key, value in card_node.value:
        if key.value == loc[0]:
            return int(value.start_mark.line) + 1
    return None


def load_deck(path: Path) -> LoadedDeck:
    """Load a deck, raising DeckError naming the first problem's file and line."""
    loaded, problems = check_deck(path)
    if loaded is None:
        first = problems[0]
        more = (
            f" (and {len(problems) - 1} more; run `grader deck check`)" if len(problems) > 1 else ""
        )
        raise DeckError(f"{first.message}{more}", path=first.path, line=first.line)
    return loaded


class _DeckDumper(yaml.SafeDumper):
    """Canonical emitter: block style, literal blocks for multi-line strings."""


_UNSAFE_BREAKS = frozenset("\r\x85\u2028\u2029")


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # YAML readers fold these line breaks in plain and block scalars; only escapes survive.
    if _UNSAFE_BREAKS.intersection(value):
        style: str | None = '"'
    else:
        style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_DeckDumper.add_representer(str, _represent_str)


def _card_mapping(card: Card) -> dict[str, Any]:
    # Card declares its fields in the order a deck file shows them, and model_dump keeps it
    data: dict[str, Any] = card.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    return data


def dump_deck(deck: Deck) -> str:
    """The canonical text of a deck."""
    document: dict[str, Any] = {"version": FORMAT_VERSION, "name": deck.name}
    if deck.description is not None:
        document["description"] = deck.description
    document["cards"] = [_card_mapping(card) for card in deck.cards]
    body = yaml.dump(
        document,
        Dumper=_DeckDumper,
        sort_keys=False,
        allow_unicode=True,
        width=1_000_000,
        default_flow_style=False,
        indent=2,
    )
    return HEADER + body


def loads_deck(text: str, path: Path = Path("<text>")) -> Deck:
    """Parse deck text (used by round-trip tests and imports)."""
    data = yaml.safe_load(text)
    try:
        return Deck.model_validate({k: v for k, v in data.items() if k != "version"})
    except ValidationError as exc:
        raise DeckError(str(exc.errors()[0]["msg"]), path=path) from None


def save_deck(path: Path, deck: Deck) -> None:
    """Validate and write a deck atomically (temp file plus rename)."""
    ids = [card.id for card in deck.cards]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise DeckError(f"duplicate card ids: {', '.join(duplicates)}", path=path)
    write_text_atomic(Path(path), dump_deck(deck))


def find_decks(directory: Path) -> list[Path]:
    """Deck files directly under `directory`, sorted by name."""
    return sorted(p for p in Path(directory).iterdir() if p.is_file() and is_deck_file(p))


class DeckSummary(BaseModel):
    """One row of `grader deck list`."""

    model_config = ConfigDict(extra="forbid")

    path: str
    """The deck file."""
    name: str | None
    """The deck's name (None when the file does not load)."""
    cards: int | None
    """Number of cards (None when the file does not load)."""
    problem: str | None = None
    """The first problem, when the file does not load."""


class DeckCheck(BaseModel):
    """The result of validating one deck file."""

    model_config = ConfigDict(extra="forbid")

    path: str
    """The deck file."""
    ok: bool
    """True when the deck has no problems."""
    cards: int | None
    """Number of cards (None when the deck has problems)."""
    notes: list[ProblemRecord] = Field(default_factory=list)
    """What loads but deserves a look: a rubric made for an earlier answer (not used)."""
    problems: list[ProblemRecord]
    """Every problem found, in file order."""


class ProblemRecord(BaseModel):
    """A Problem as data (for --json)."""

    model_config = ConfigDict(extra="forbid")

    path: str
    line: int
    message: str


DeckCheck.model_rebuild()


def list_decks(directory: Path) -> list[DeckSummary]:
    """Every deck file directly under `directory`, with its name and card count."""
    directory = Path(directory)
    if not directory.exists():
        raise InputError("no such directory", path=directory)
    if not directory.is_dir():
        raise InputError("not a directory", path=directory)
    summaries: list[DeckSummary] = []
    for path in find_decks(directory):
        try:
            loaded, problems = check_deck(path)
        except InputError as exc:
            summaries.append(
                DeckSummary(path=path.as_posix(), name=None, cards=None, problem=str(exc))
            )
            continue
        if loaded is None:
            summaries.append(
                DeckSummary(path=path.as_posix(), name=None, cards=None, problem=str(problems[0]))
            )
        else:
            summaries.append(
                DeckSummary(
                    path=path.as_posix(), name=loaded.deck.name, cards=len(loaded.deck.cards)
                )
            )
    return summaries


def check_decks(paths: list[Path]) -> list[DeckCheck]:
    """Validate each deck file, collecting every problem."""
    results: list[DeckCheck] = []
    for path in paths:
        try:
            loaded, problems = check_deck(Path(path))
        except InputError as exc:
            if exc.line is None:  # no such file, a directory: nothing to check
                raise
            # not UTF-8: a problem at a line of this file, like any other
            message = str(exc).removeprefix(f"{Path(path)}:{exc.line}:").strip()
            loaded, problems = None, [Problem(Path(path), exc.line, message)]
        records = [
            ProblemRecord(path=p.path.as_posix(), line=p.line, message=p.message) for p in problems
        ]
        cards = len(loaded.deck.cards) if loaded is not None else None
        notes = [] if loaded is None else _stale_rubrics(loaded)
        results.append(
            DeckCheck(
                path=Path(path).as_posix(),
                ok=not problems,
                cards=cards,
                problems=records,
                notes=notes,
            )
        )
    return results


def _stale_rubrics(loaded: LoadedDeck) -> list[ProblemRecord]:
    path = loaded.path.as_posix()
    return [
        ProblemRecord(
            path=path,
            line=loaded.card_lines.get(card.id, 1),
            message=f"card {card.id}: its rubric was made for an earlier answer and is not used; "
            f"refresh it with: grader rubric {path} --card {card.id}",
        )
        for card in loaded.deck.cards
        if card.rubric_is_stale()
    ]
