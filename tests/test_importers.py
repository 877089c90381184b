"""Importers on the real seed exports, CSV/TSV variants, detection, idempotent merges, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from grader.deckfile import load_deck, save_deck
from grader.errors import InputError
from grader.importers import detect_format, parse_file, parse_text
from grader.importers.base import inline_list, normalise_question
from grader.importers.into_deck import import_into_deck
from grader.models import Card, Deck

SEEDS = Path(__file__).resolve().parent.parent.parent / "shared" / "seeds"
SEED_TERMDEF = SEEDS / "000_5e00d002c2771d2b.txt"
SEED_NUMBERED = SEEDS / "001_cb5fa148d1065309.txt"
WIDGET_WORDS = ("How well did you know this?", "Not at all", "Perfectly")


def test_termdef_seed_yields_24_cards_and_warns_about_27() -> None:
    result = parse_file(SEED_TERMDEF)
    assert result.format == "termdef"
    assert result.title == "ML Ops Flashcards"
    assert result.announced == 27
    assert len(result.cards) == 24
    assert result.skipped == []
    assert result.warnings == ["the header announces 27 cards but the file holds 24"]
    first, last = result.cards[0], result.cards[-1]
    assert (first.line, first.question) == (3, "What is the main idea behind ML engineering?")
    assert first.answer == "Building usable, maintainable ML systems beyond just training models."
    assert last.question == "Why is version control important in ML systems?"
    assert all(card.footnote is None for card in result.cards)


def test_numbered_seed_yields_69_cards_each_with_its_footnote() -> None:
    result = parse_file(SEED_NUMBERED)
    assert result.format == "numbered"
    assert result.title == "ML OPs Flashcards"
    assert result.announced == 70
    assert len(result.cards) == 69
    assert all(card.footnote for card in result.cards)
    assert [(s.line, s.reason) for s in result.skipped] == [(5, "card 1 is empty")]
    assert result.warnings == []
    for card in result.cards:
        text = "\n".join([card.question, card.answer, card.footnote or ""])
        assert not any(word in text for word in WIDGET_WORDS), card
        assert "## Footnote" not in text
        assert card.question.strip() == card.question and card.question


def test_numbered_seed_first_layout_keeps_bullets_and_splits_the_footnote() -> None:
    cards = {card.question: card for card in parse_file(SEED_NUMBERED).cards}
    two = cards["What does MLOps stand for?"]
    assert two.answer == (
        "The way teams build, deploy, monitor and update machine-learning models in real life"
    )
    assert (
        two.footnote
        == "MLOps encompasses everything around the training of machine-learning models."
    )
    three = cards["What is the real ML life cycle in MLOps?"]
    assert three.answer.splitlines()[:2] == ["- Define business goal", "- Get data"]
    assert len(three.answer.splitlines()) == 8
    assert three.footnote == "MLOps is about running this loop properly."
    four = cards["Why do we need MLOps?"]
    assert four.answer == (
        "To manage:\n- Lots of data\n- Lots of models\n- Lots of users\n- Lots of updates"
    )
    twenty_four = cards["What is involved in the modeling step?"]
    assert (twenty_four.answer, twenty_four.footnote) == (
        "Train the model",
        "This is where the actual learning occurs.",
    )


def test_numbered_seed_second_layout_keeps_bold_and_turns_inline_lists_into_lines() -> None:
    result = parse_file(SEED_NUMBERED)
    cards = {card.question: card for card in result.cards}
    bold = [card for card in result.cards if "**" in card.question]
    assert len(bold) >= 30
    pipeline = cards["Who primarily builds **ML pipelines**?"]
    assert pipeline.answer == "- MLOps engineers\n- Software engineers\n- Data scientists"
    assert pipeline.footnote == "It\u2019s system architecture work."
    twenty_nine = cards["True or false: You deploy a model in an ML pipeline."]
    assert twenty_nine.answer == "FALSE"
    assert twenty_nine.footnote is not None and twenty_nine.footnote.startswith(
        "You deploy a pipeline"
    )
    last = result.cards[-1]
    assert last.question == "Summarize the role of **cloud computing** in ML."
    assert last.footnote == "This has transformed the affordability of machine learning."
    assert last.line == 609


def test_layouts_split_as_announced() -> None:
    result = parse_file(SEED_NUMBERED)
    text = SEED_NUMBERED.read_text(encoding="utf-8").splitlines()
    layout_a = [c for c in result.cards if text[c.line] == "Q"]
    assert len(layout_a) == 23
    assert len(result.cards) - len(layout_a) == 46


def test_inline_list_and_normalisation() -> None:
    assert inline_list("* a * b → c * d") == "- a\n- b → c\n- d"
    assert inline_list("a * b") == "a * b"
    assert normalise_question("What is **CRISP-DM**?") == normalise_question("what is  crisp-dm")
    assert normalise_question("What is \u2018data drift\u2019?") == "what is 'data drift'"


def test_csv_with_anki_style_header_names(tmp_path: Path) -> None:
    path = tmp_path / "cards.csv"
    path.write_text(
        "Front,Back,Notes,Tags\n"
        '"What is drift?","Input data changes<br>over time","Monitor it","mlops drift"\n'
        "\n"
        '"Multi\nline?","- a\n- b",,\n'
        '"No answer",,,\n',
        encoding="utf-8",
    )
    result = parse_file(path)
    assert result.format == "csv"
    assert [c.line for c in result.cards] == [2, 4]
    first, second = result.cards
    assert first.answer == "Input data changes\nover time"
    assert first.footnote == "Monitor it"
    assert first.tags == ["mlops", "drift"]
    assert second.question == "Multi\nline?"
    assert second.answer == "- a\n- b"
    assert second.footnote is None
    assert [(s.line, s.reason) for s in result.skipped] == [(7, "row has no answer")]


def test_tsv_quizlet_names_and_anki_directives(tmp_path: Path) -> None:
    quizlet = tmp_path / "q.tsv"
    quizlet.write_text("term\tdefinition\nTerm one\tDefinition one\n", encoding="utf-8")
    result = parse_file(quizlet)
    assert (result.format, result.cards[0].question, result.cards[0].answer) == (
        "tsv",
        "Term one",
        "Definition one",
    )
    anki = tmp_path / "anki.txt"
    anki.write_text(
        "#separator:tab\n#html:true\n#columns:Front\tBack\tTags\nQ1\tA1\tt1\n", encoding="utf-8"
    )
    result = parse_file(anki)
    assert result.format == "tsv"
    assert [(c.question, c.answer, c.tags, c.line) for c in result.cards] == [
        ("Q1", "A1", ["t1"], 4)
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b\n1,2\n", r"cards\.csv:1: header has no front/question/term column"),
        ("front,back\nq,a,extra\n", r"cards\.csv:2: 3 fields, but the header has 2"),
        ('front,back\nq,"never closed\n', r"cards\.csv:\d+: malformed csv"),
    ],
)
def test_malformed_csv_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "cards.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        parse_file(path)


def test_a_card_the_deck_cannot_hold_names_its_line_and_writes_nothing(tmp_path: Path) -> None:
    source = tmp_path / "cards.csv"
    source.write_text("front,back,id\nq1,a1,ok1\nq2,a2,has space\n", encoding="utf-8")
    deck_path = tmp_path / "deck.yaml"
    with pytest.raises(
        InputError, match=r"^.*cards\.csv:3: id: card id must be a non-empty token without spaces$"
    ):
        import_into_deck(source, deck_path)
    assert not deck_path.exists()


def test_numbered_without_answer_marker_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "n.txt"
    path.write_text("Title\n(1 cards)\n1\nQ\nquestion only\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"n\.txt:4: card 1: a `Q` line without an `A` line"):
        parse_file(path)


def test_detection_and_explicit_format(tmp_path: Path) -> None:
    assert detect_format(SEED_TERMDEF.read_text(encoding="utf-8"), SEED_TERMDEF) == "termdef"
    assert detect_format(SEED_NUMBERED.read_text(encoding="utf-8"), SEED_NUMBERED) == "numbered"
    assert detect_format("front\tback\nq\ta\n", Path("x.txt")) == "tsv"
    plain = tmp_path / "pairs.txt"
    plain.write_text("question one\nanswer one\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"pairs\.txt:1: cannot tell the format; pass --format"):
        parse_file(plain)
    result = parse_file(plain, "termdef")
    assert [(c.question, c.answer) for c in result.cards] == [("question one", "answer one")]
    with pytest.raises(InputError, match="unknown format 'yaml'"):
        parse_file(plain, "yaml")
    with pytest.raises(InputError, match="the file is empty"):
        parse_text("\n\n", Path("empty.txt"))


def test_termdef_dangling_question_is_skipped_with_reason() -> None:
    result = parse_text("T\n(2 cards)\nq1\na1\nq2\n", Path("t.txt"), "termdef")
    assert len(result.cards) == 1
    assert [(s.line, s.reason) for s in result.skipped] == [(5, "question without an answer: q2")]
    assert result.warnings == []


def test_import_creates_the_deck_with_provenance(tmp_path: Path) -> None:
    deck_path = tmp_path / "scratch.yaml"
    report = import_into_deck(SEED_NUMBERED, deck_path, created_at="2026-01-02T03:04:05+00:00")
    assert (report.deck_created, report.parsed, report.added, report.footnotes) == (
        True,
        69,
        69,
        69,
    )
    assert report.deck_name == "ML OPs Flashcards"
    assert [s.reason for s in report.skipped] == ["card 1 is empty"]
    deck = load_deck(deck_path).deck
    assert [c.id for c in deck.cards] == report.added_ids
    assert len(set(report.added_ids)) == 69
    provenance = deck.cards[0].provenance
    assert provenance is not None
    assert provenance.kind == "imported"
    assert provenance.source == f"{SEED_NUMBERED.as_posix()}:16"
    assert provenance.format == "numbered"
    assert provenance.created_at == "2026-01-02T03:04:05+00:00"


def test_reimport_is_idempotent_and_says_so(tmp_path: Path) -> None:
    deck_path = tmp_path / "d.yaml"
    import_into_deck(SEED_TERMDEF, deck_path)
    before = deck_path.read_bytes()
    again = import_into_deck(SEED_TERMDEF, deck_path)
    assert (again.added, len(again.duplicates), again.deck_created) == (0, 24, False)
    assert deck_path.read_bytes() == before
    assert again.warnings == ["the header announces 27 cards but the file holds 24"]


def test_import_matches_edited_spacing_and_case_and_keeps_existing_cards(tmp_path: Path) -> None:
    deck_path = tmp_path / "d.yaml"
    existing = Card(id="mine", question="what is  the MAIN idea behind ML engineering", answer="x")
    save_deck(deck_path, Deck(name="Mine", cards=[existing]))
    report = import_into_deck(SEED_TERMDEF, deck_path, tags=["seed"])
    assert report.added == 23
    assert [(d.line, d.card_id) for d in report.duplicates] == [(3, "mine")]
    deck = load_deck(deck_path).deck
    assert deck.name == "Mine"
    assert deck.cards[0] == existing
    assert all(c.tags == ["seed"] for c in deck.cards[1:])


def test_csv_ids_are_kept_when_free(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("id,front,back\nabc,Q1,A1\ntaken,Q2,A2\n", encoding="utf-8")
    deck_path = tmp_path / "d.yaml"
    save_deck(deck_path, Deck(name="d", cards=[Card(id="taken", question="Q0", answer="A0")]))
    report = import_into_deck(source, deck_path)
    assert report.added_ids[0] == "abc"
    assert report.added_ids[1] not in {"abc", "taken"}


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.csv", b"front,back\nq,a,b\n", r"bad\.csv:2: "),
        ("latin.txt", b"T\n(1 cards)\nq\ncaf\xe9\n", r"latin\.txt:4: not UTF-8"),
        ("missing.txt", None, r"missing\.txt: no such file"),
    ],
)
def test_failed_import_leaves_the_deck_untouched(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    deck_path = tmp_path / "d.yaml"
    import_into_deck(SEED_TERMDEF, deck_path)
    before = deck_path.read_bytes()
    source = tmp_path / name
    if content is not None:
        source.write_bytes(content)
    with pytest.raises(InputError, match=message):
        import_into_deck(source, deck_path)
    assert deck_path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == []


def test_import_into_a_broken_deck_refuses_and_keeps_it(tmp_path: Path) -> None:
    deck_path = tmp_path / "d.yaml"
    deck_path.write_text("name: [broken\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"d\.yaml:\d+: YAML syntax error"):
        import_into_deck(SEED_TERMDEF, deck_path)
    assert deck_path.read_text(encoding="utf-8") == "name: [broken\n"
