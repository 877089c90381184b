"""Misspelled card words are matched back to the card's spelling, and nothing else is."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grader.spelling import Respeller, max_edits, words_of

KNOWN = frozenset({"stable", "increasing", "decreasing", "mode", "train", "the", "and"})
CARD = words_of(["Design, Model Development, and Operations.", "Scalability; stability"])


@pytest.fixture
def respeller() -> Respeller:
    return Respeller(KNOWN)


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("desing", "design"),  # neighbours swapped: one edit
        ("modle", "model"),
        ("developement", "development"),
        ("operatoins", "operations"),
        ("scalabilty", "scalability"),
        ("devlopmnet", "development"),  # two edits in a long word
        ("scalabilit", "scalability"),  # cut short
        ("Desing", "design"),  # case does not matter to the uncased model
    ],
)
def test_misspelled_card_words_take_the_cards_spelling(
    respeller: Respeller, written: str, meant: str
) -> None:
    assert respeller.respell(written, CARD) == meant


def test_only_the_misspelled_words_change(respeller: Respeller) -> None:
    text = "desing, model developement, operatoins (and more!)"
    assert respeller.respell(text, CARD) == "design, model development, operations (and more!)"


@pytest.mark.parametrize(
    ("written", "why"),
    [
        ("mode", "a known word is what the learner meant"),
        ("stable", "a known word, even one edit from a card word"),
        ("opinions", "too far from any card word"),
        ("stbilty", "two edits from 'stability', and only long words may take two"),
        ("xdesign", "the first letter differs"),
        ("dsg", "shorter than four letters"),
        ("designs", "another ending of a card word is another word"),
        ("designed", "another ending of a card word is another word"),
        ("modelling", "a card word extended is another word"),
        ("designer", "a card word extended is another word"),
    ],
)
def test_words_left_alone(respeller: Respeller, written: str, why: str) -> None:
    assert respeller.respell(written, CARD) == written, why


def test_a_negation_typed_without_its_apostrophe_is_never_respelled(respeller: Respeller) -> None:
    assert respeller.respell("they wont retrain", words_of(["They want to retrain"])) == (
        "they wont retrain"
    )


def test_a_tie_is_left_alone(respeller: Respeller) -> None:
    # "tran" is one edit from both "trap" and "tram" at the same length: no way to tell which.
    assert respeller.respell("tran", frozenset({"trap", "tram"})) == "tran"


def test_a_closer_length_breaks_a_distance_tie(respeller: Respeller) -> None:
    # One edit from all three; "model" has the same length as "modle", so it is the one.
    assert respeller.respell("modle", frozenset({"model", "module", "mode"})) == "model"


def test_empty_vocabulary_changes_nothing(respeller: Respeller) -> None:
    assert respeller.respell("desing", frozenset()) == "desing"


def test_allowed_edits_grow_with_length() -> None:
    assert [max_edits(n) for n in (4, 8, 9, 12)] == [1, 1, 2, 2]


def test_words_of_keeps_words_of_four_letters_or_more() -> None:
    assert words_of(["A/B testing of the ML model", "CI"]) == {"testing", "model"}


@given(st.text(alphabet=st.sampled_from("desingmoltarpcvu ,.;-!?ABCDÉ'\n"), max_size=60))
def test_respelling_touches_only_letters_and_is_stable(text: str) -> None:
    respeller = Respeller(KNOWN)
    once = respeller.respell(text, CARD)
    assert re.sub("[A-Za-z]", "", once) == re.sub("[A-Za-z]", "", text)  # the rest is kept
    assert respeller.respell(once, CARD) == once  # card words stay card words
    assert set(re.findall("[a-z]+", once.lower())) - set(re.findall("[a-z]+", text.lower())) <= CARD


@pytest.mark.parametrize(
    ("written", "card_word"),
    [("visualisations", "visualizations"), ("organise", "organize"), ("colour", "color")],
)
def test_british_spelling_is_matched_but_never_called_a_misspelling(
    written: str, card_word: str
) -> None:
    respeller = Respeller(frozenset())
    text, restored = respeller.respell_noting(f"the {written} matter", frozenset({card_word}))
    assert text == f"the {card_word} matter"
    assert restored == []


@pytest.mark.parametrize(
    ("written", "card_word"),
    [("organise", "organize"), ("organize", "organise"), ("modelling", "modeling")],
)
def test_a_known_word_in_the_other_spelling_takes_the_cards(written: str, card_word: str) -> None:
    """ "organise" is a real word, so never a slip; it is still the card's word."""
    respeller = Respeller(frozenset({written, card_word}))
    text, restored = respeller.respell_noting(
        f"plan, {written} and iterate", frozenset({card_word})
    )
    assert text == f"plan, {card_word} and iterate"
    assert restored == []


def test_a_known_word_is_otherwise_left_alone() -> None:
    respeller = Respeller(frozenset({"organism"}))
    assert respeller.respell("an organism", frozenset({"organise"})) == "an organism"
