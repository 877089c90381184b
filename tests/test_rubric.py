"""Key points derived from a reference answer: bullets, claims, enumerations, coordinated verbs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grader.models import Card
from grader.rubric import (
    alternatives,
    derive_key_points,
    required_points,
    rubric_for,
    split_coordination,
)


@pytest.mark.parametrize(
    ("clause", "claims"),
    [
        (
            "Builds and manages data pipelines and ETL systems",
            [
                "Builds data pipelines",
                "Builds ETL systems",
                "manages data pipelines",
                "manages ETL systems",
            ],
        ),
        ("Builds and manages data pipelines", ["Builds data pipelines", "manages data pipelines"]),
        (
            "Deployed and monitored in production",
            ["Deployed in production", "monitored in production"],
        ),
        ("Versioning and tracking experiments", ["Versioning experiments", "tracking experiments"]),
        ("To build and deploy models", ["To build models", "To deploy models"]),
        ("They build and operate ML systems", ["They build ML systems", "They operate ML systems"]),
        # A one-word object pair is kept whole, attached to each verb.
        (
            "Records and compares inputs and outputs",
            ["Records inputs and outputs", "compares inputs and outputs"],
        ),
        # An enumerated object is not split here either.
        (
            "Builds and tests pipelines, APIs, and dashboards",
            ["Builds pipelines, APIs, and dashboards", "tests pipelines, APIs, and dashboards"],
        ),
    ],
)
def test_coordinated_verbs_split_into_one_claim_per_verb_and_object(
    clause: str, claims: list[str]
) -> None:
    assert split_coordination(clause) == claims


@pytest.mark.parametrize(
    "clause",
    [
        # noun pairs: the pair is the subject or sits inside a phrase
        "The relationship between inputs and outputs evolves over time",
        "Inputs and outputs are logged for every request",
        "A and C are in different paths with the battery",
        "Greta and Andre have different sized hands",
        "Terminals 1 and 2 are connected",
        "Measure out equal masses of walnuts and peanuts",
        # bare words without "to" or a subject pronoun may be nouns ("Precision score")
        "Precision and F1 score",
        "Design and development",
        # different endings: not one verb form
        "Versioning and drift detection",
        # the verbs carry different objects: already two claims, no shared part to distribute
        "Deploys models and manages APIs",
        # a verb pair with a subject in front is not split (known limit, see the docstring)
        "The graph shows A heats and cools more quickly than B, so A must be the dry soil",
        # "or" offers alternatives, not claims that must all be made
        "Builds or manages data pipelines",
        # nothing after the pair to share
        "Monitoring and alerting",
    ],
)
def test_other_clauses_stay_whole(clause: str) -> None:
    assert split_coordination(clause) == [clause]


_WORD = st.sampled_from(["builds", "manages", "tested", "to", "they", "are", "data", "ETL", "x"])
_SPACE = st.sampled_from([" ", "  ", "\t"])
# Mostly verb-pair shapes ("[lead] W and W [rest]"), with odd spacing and stray words and commas.
_CLAUSES = st.builds(
    lambda lead, first, second, rest, gap: gap.join([*lead, first, "and", second, *rest]),
    st.lists(_WORD, max_size=1),
    _WORD,
    _WORD,
    st.lists(st.one_of(_WORD, st.sampled_from(["and", ",", " ", ""])), max_size=6),
    _SPACE,
)


@settings(deadline=None)
@given(st.one_of(_CLAUSES, st.text(max_size=30)))
def test_a_split_only_reuses_the_clause_words(clause: str) -> None:
    claims = split_coordination(clause)
    assert claims
    if claims != [clause]:
        assert len(claims) in (2, 4)
        words = set(clause.split())
        assert all(set(claim.split()) <= words for claim in claims)


def test_the_data_engineer_reference_has_four_points() -> None:
    points = derive_key_points("Builds and manages data pipelines and ETL systems.")
    assert points == [
        "Builds data pipelines",
        "Builds ETL systems",
        "manages data pipelines",
        "manages ETL systems",
    ]


def test_coordination_applies_per_sentence_and_clause() -> None:
    answer = "Data engineers build and maintain pipelines. They build and test ETL jobs; DBAs tune."
    assert derive_key_points(answer) == [
        "Data engineers build and maintain pipelines",
        "They build ETL jobs",
        "They test ETL jobs",
        "DBAs tune",
    ]


def test_enumerations_and_bullets_are_unchanged() -> None:
    assert derive_key_points("Design, Model Development, and Operations.") == [
        "Design",
        "Model Development",
        "Operations",
    ]
    assert derive_key_points("- Builds and manages pipelines\n- **Monitors** models") == [
        "Builds and manages pipelines",
        "Monitors models",
    ]
    assert derive_key_points("The relationship between inputs and outputs evolves over time.") == [
        "The relationship between inputs and outputs evolves over time"
    ]


@pytest.mark.parametrize(
    "reference",
    [
        # examples in parentheses are not claims ("etc.)" used to be a key point)
        "Putting the model into the real system (web app, backend, mobile app, etc.)",
        "Check how good it is (metrics, validation, tests)",
        # alternatives: any one of them answers
        "They lack monitoring, robust pipelines, or stakeholder alignment.",
        "Retrain on new data, roll back, or page the on-call engineer.",
    ],
)
def test_examples_and_alternatives_stay_one_claim(reference: str) -> None:
    assert derive_key_points(reference) == [reference.rstrip(".")]


def test_an_enumeration_keeps_its_items_parentheses_whole() -> None:
    assert derive_key_points("Use CI (tests, linting), CD (deploy), and monitoring.") == [
        "Use CI (tests, linting)",
        "CD (deploy)",
        "monitoring",
    ]


def test_a_stored_rubric_wins() -> None:
    card = Card(
        id="c1",
        question="What does a data engineer do?",
        answer="Builds and manages data pipelines and ETL systems.",
        rubric=["Data pipelines", "ETL systems"],
    )
    assert rubric_for(card) == ["Data pipelines", "ETL systems"]


@pytest.mark.parametrize(
    ("point", "expected"),
    [
        (
            "They lack monitoring, robust pipelines, or stakeholder alignment",
            [
                "They lack monitoring",
                "They lack robust pipelines",
                "They lack stakeholder alignment",
            ],
        ),
        ("Amazon Web Services (AWS)", ["Amazon Web Services", "AWS"]),
        ("Quality of Service (QoS) is hard", ["Quality of Service is hard", "QoS is hard"]),
        (
            "growth doubles each Round Trip Time (RTT)",
            ["growth doubles each Round Trip Time", "growth doubles each RTT"],
        ),
    ],
)
def test_alternatives(point: str, expected: list[str]) -> None:
    assert [a.text for a in alternatives(point)] == expected


def test_an_alternative_knows_its_own_words() -> None:
    assert [
        a.item for a in alternatives("They lack monitoring, robust pipelines, or alignment")
    ] == [
        "monitoring",
        "robust pipelines",
        "alignment",
    ]
    assert [a.item for a in alternatives("Amazon Web Services (AWS)")] == [
        "Amazon Web Services",
        "AWS",
    ]


@pytest.mark.parametrize(
    "point",
    [
        "no ACK, no flow control, no connect or disconnect",  # no comma before "or": a list
        "Sudden anomalies or shifts in data",  # two synonyms, not alternatives
        "a mapping between stations (MACs) and interfaces",  # initials do not spell it
        "Putting the model into the real system (web app, backend, etc.)",
        "Microsoft Azure",
    ],
)
def test_no_alternatives(point: str) -> None:
    assert alternatives(point) == ()


@pytest.mark.parametrize(
    ("question", "points", "wanted"),
    [
        ("What are some components of a full ML system?", 6, 3),
        ("What is one reason many ML projects fail?", 3, 1),
        ("Name any two tools.", 4, 2),
        ("Give an example of drift.", 3, 1),
        ("List the **six steps** of the CRISP-DM workflow.", 6, 6),
        ("What are the three major phases of the ML lifecycle?", 3, 3),
        ("Summarize the CRISP-DM workflow in one line.", 3, 3),  # one line is not one point
        ("What are some problems?", 2, 2),  # never more than there are
        ("Why is monitoring needed?", 3, 3),
    ],
)
def test_required_points_reads_the_count_the_question_asks_for(
    question: str, points: int, wanted: int
) -> None:
    assert required_points(question, points) == wanted
