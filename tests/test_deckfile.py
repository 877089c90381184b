"""Deck files: byte-for-byte round trips (property-based) and every validation problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader.deckfile import (
    check_deck,
    dump_deck,
    find_decks,
    list_decks,
    load_deck,
    loads_deck,
    save_deck,
)
from grader.errors import DeckError, InputError
from grader.models import Card, Deck, Provenance

REPO_ROOT = Path(__file__).resolve().parent.parent
SEED_DECKS = sorted((REPO_ROOT / "decks").glob("mlops-*.yaml"))

_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)
_nonblank = _text.filter(lambda s: bool(s.strip()))
_token = st.text(
    st.characters(whitelist_categories=("Ll", "Lu", "Nd"), whitelist_characters="-_."),
    min_size=1,
    max_size=12,
)
_multiline = (
    st.lists(_text, min_size=1, max_size=4).map("\n".join).filter(lambda s: bool(s.strip()))
)
_answer = st.one_of(
    _nonblank,
    _multiline,
    st.lists(_nonblank.map(lambda s: "- " + " ".join(s.split())), min_size=1, max_size=5).map(
        "\n".join
    ),
)
_provenance = st.builds(
    Provenance,
    kind=st.sampled_from(["imported", "proposed", "manual"]),
    source=st.none() | _text,
    format=st.none() | _token,
    created_at=st.none() | st.just("2026-11-23T00:00:00+00:00"),
    approved_by=st.none() | _text,
)
_card = st.builds(
    Card,
    id=_token,
    question=st.one_of(_nonblank, _multiline),
    answer=_answer,
    footnote=st.none() | _text,
    tags=st.lists(_token, max_size=3),
    rubric=st.lists(_nonblank, max_size=3),
    rubric_source=st.none() | st.sampled_from(["heuristic", "llm", "author"]),
    provenance=st.none() | _provenance,
)


@st.composite
def decks(draw: st.DrawFn) -> Deck:
    cards = draw(st.lists(_card, max_size=5, unique_by=lambda c: c.id))
    return Deck(name=draw(_nonblank), description=draw(st.none() | _text), cards=cards)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(deck=decks())
def test_any_deck_the_writer_produces_reads_back_equal(deck: Deck) -> None:
    text = dump_deck(deck)
    assert loads_deck(text) == deck
    assert dump_deck(loads_deck(text)) == text


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(deck=decks())
def test_save_then_load_then_save_is_byte_for_byte(deck: Deck, tmp_path: Path) -> None:
    path = tmp_path / "deck.yaml"
    save_deck(path, deck)
    first = path.read_bytes()
    loaded = load_deck(path)
    assert loaded.deck == deck
    save_deck(path, loaded.deck)
    assert path.read_bytes() == first


@pytest.mark.parametrize("path", SEED_DECKS, ids=lambda p: p.name)
def test_seed_decks_load_and_save_byte_for_byte(path: Path, tmp_path: Path) -> None:
    loaded = load_deck(path)
    assert loaded.deck.cards
    copy = tmp_path / path.name
    save_deck(copy, loaded.deck)
    assert copy.read_bytes() == path.read_bytes()


def test_seed_decks_are_committed_with_their_counts() -> None:
    counts = {p.name: len(load_deck(p).deck.cards) for p in SEED_DECKS}
    assert counts == {"mlops-foundations.yaml": 24, "mlops-pipeline.yaml": 69}


def test_card_lines_point_at_each_card(tmp_path: Path) -> None:
    deck = Deck(
        name="d",
        cards=[Card(id="a", question="q1", answer="x\ny"), Card(id="b", question="q2", answer="z")],
    )
    path = tmp_path / "d.yaml"
    save_deck(path, deck)
    lines = path.read_text().splitlines()
    loaded = load_deck(path)
    assert lines[loaded.card_lines["a"] - 1] == "- id: a"
    assert lines[loaded.card_lines["b"] - 1] == "- id: b"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_every_problem_is_listed_with_its_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "version: 1\n"
        "name: d\n"
        "colour: blue\n"
        "cards:\n"
        "- id: a\n"
        "  question: q\n"
        "  answer: a\n"
        "- id: a\n"
        "  question: q2\n"
        "  answer: b\n"
        "- id: c\n"
        "  question: '  '\n"
        "  answer: c\n"
        "- id: d\n"
        "  question: q4\n"
        "  answer: ''\n",
    )
    loaded, problems = check_deck(path)
    assert loaded is None
    rendered = [str(p) for p in problems]
    assert rendered == [
        f"{path}:3: unknown field 'colour'",
        f"{path}:8: duplicate card id 'a' (first at line 5)",
        f"{path}:12: card c: question: Value error, must not be empty",
        f"{path}:16: card d: answer: Value error, must not be empty",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (  # PyYAML keeps the last `cards`: a save would drop card a1
            "name: d\ncards:\n- id: a1\n  question: q\n  answer: a\n"
            "cards:\n- id: b1\n  question: q\n  answer: b\n",
            "bad.yaml:6: duplicate key 'cards' (first at line 2)",
        ),
        (
            "name: d\ncards:\n- id: a1\n  question: q\n  answer: a\n  answer: b\n",
            "bad.yaml:6: duplicate key 'answer' (first at line 5)",
        ),
        ("x: " + "[" * 5000 + "]" * 5000 + "\n", "bad.yaml:1: YAML nested too deeply"),
    ],
)
def test_a_deck_that_would_lose_data_or_crash_is_refused(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = _write(tmp_path, text)
    _, problems = check_deck(path)
    assert [str(p) for p in problems] == [f"{tmp_path}/{expected}"]
    with pytest.raises(DeckError):
        load_deck(path)
    assert path.read_text(encoding="utf-8") == text


def test_a_yaml_merge_key_is_no_duplicate(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "name: d\ncards:\n- &first\n  id: a1\n  question: q\n  answer: a\n"
        "- <<: *first\n  id: a2\n  question: q2\n",
    )
    loaded, problems = check_deck(path)
    assert problems == [] and loaded is not None
    assert [(c.id, c.question, c.answer) for c in loaded.deck.cards] == [
        ("a1", "q", "a"),
        ("a2", "q2", "a"),
    ]


def test_yaml_syntax_error_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "name: d\ncards:\n- id: a\n  question: [unclosed\n  answer: x\n")
    _, problems = check_deck(path)
    assert len(problems) == 1
    assert problems[0].line in (4, 5)
    assert "YAML syntax error" in problems[0].message
    with pytest.raises(DeckError, match=r"bad\.yaml:\d+: YAML syntax error"):
        load_deck(path)


def test_missing_name_and_non_mapping_root(tmp_path: Path) -> None:
    _, problems = check_deck(_write(tmp_path, "cards: []\n"))
    assert [p.message for p in problems] == ["field `name` is required"]
    _, problems = check_deck(_write(tmp_path, "- just\n- a list\n"))
    assert "must be a mapping" in problems[0].message
    _, problems = check_deck(_write(tmp_path, "name: d\ncards: 3\n"))
    assert problems[0].message == "`cards` must be a list"


def test_python_tags_are_refused_not_executed(tmp_path: Path) -> None:
    _, problems = check_deck(_write(tmp_path, "name: !!python/object:os.system x\n"))
    assert problems and problems[0].line == 1


def test_unreadable_files_are_one_clear_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"missing\.yaml: no such file"):
        load_deck(tmp_path / "missing.yaml")
    with pytest.raises(InputError, match="is a directory"):
        load_deck(tmp_path)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"name: d\ncards:\n- id: a\n  question: caf\xe9\n  answer: x\n")
    with pytest.raises(InputError, match=r"latin\.yaml:4: not UTF-8"):
        load_deck(latin)


def test_save_refuses_duplicate_ids_and_leaves_the_file(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    save_deck(path, Deck(name="d", cards=[Card(id="a", question="q", answer="a")]))
    before = path.read_bytes()
    twice = Deck(
        name="d",
        cards=[Card(id="a", question="q", answer="a"), Card(id="a", question="r", answer="b")],
    )
    with pytest.raises(DeckError, match="duplicate card ids: a"):
        save_deck(path, twice)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["d.yaml"]


def test_find_and_list_decks_skip_proposals_and_report_invalid(tmp_path: Path) -> None:
    save_deck(tmp_path / "b.yaml", Deck(name="B", cards=[Card(id="x", question="q", answer="a")]))
    (tmp_path / "a.yml").write_text("name: [\n")
    (tmp_path / "b.proposals.yaml").write_text("deck: b.yaml\nproposals: []\n")
    (tmp_path / "notes.txt").write_text("hi")
    assert [p.name for p in find_decks(tmp_path)] == ["a.yml", "b.yaml"]
    summaries = list_decks(tmp_path)
    assert [(s.name, s.cards) for s in summaries] == [(None, None), ("B", 1)]
    assert summaries[0].problem is not None and "a.yml:" in summaries[0].problem
    with pytest.raises(InputError, match="no such directory"):
        list_decks(tmp_path / "nope")
