"""Run metrics: binary gold is a dataset's property, and compare pairs what both runs graded."""

from __future__ import annotations

import pytest

from grader.evaluation.compare import compare_results
from grader.evaluation.runner import ResultRecord
from grader.evaluation.scoring import summarise
from grader.models import Grade, GradeEvidence, verdict_for_score

EVIDENCE = GradeEvidence(grader="offline")


def record(
    dataset: str, line: int, gold: float, predicted: float | None, kind: str | None = None
) -> ResultRecord:
    if predicted is None:
        grade = Grade.ungraded("grader failed: timeout", EVIDENCE)
    else:
        grade = Grade(
            score=predicted,
            verdict=verdict_for_score(predicted),
            feedback="Feedback.",
            evidence=EVIDENCE,
        )
    return ResultRecord(
        key=f"{dataset}:{line}",
        id=str(line),
        dataset=dataset,
        line=line,
        gold=gold,
        kind=kind,
        predicted_score=predicted,
        verdict=grade.verdict,
        grade=grade,
    )


def test_a_partial_verdict_on_a_wrong_answer_is_wrong_in_its_kind_slice() -> None:
    """The dataset grades in three classes; its `wrong` slice only lacks partial gold."""
    results = [
        record("seed", 1, 0.0, 0.5, "wrong"),
        record("seed", 2, 0.0, 0.5, "wrong"),
        record("seed", 3, 0.0, 0.0, "wrong"),
        record("seed", 4, 0.5, 0.5, "partial"),
    ]
    summary = summarise(results, resamples=0)
    wrong = summary.by_kind["wrong"]
    assert wrong.classes == ["correct", "partial", "incorrect"]
    assert wrong.accuracy.value == pytest.approx(1 / 3)
    assert summary.overall.accuracy.value == pytest.approx(2 / 4)


def test_a_binary_dataset_counts_partial_as_incorrect_overall_and_in_its_slices() -> None:
    results = [
        record("binary", 1, 0.0, 0.5, "k"),
        record("binary", 2, 1.0, 1.0, "k"),
        record("graded", 1, 0.5, 0.5, "k"),
        record("graded", 2, 0.0, 0.5, "k"),
    ]
    summary = summarise(results, resamples=0)
    assert summary.by_dataset["binary"].classes == ["correct", "incorrect"]
    assert summary.by_dataset["binary"].accuracy.value == 1.0
    assert summary.by_dataset["graded"].accuracy.value == 0.5
    # the mixed slices: the binary dataset's partial is incorrect there too
    assert summary.overall.classes == ["correct", "partial", "incorrect"]
    assert summary.overall.accuracy.value == pytest.approx(3 / 4)
    assert summary.by_kind["k"].accuracy.value == pytest.approx(3 / 4)


def test_compare_scores_both_runs_on_the_responses_both_graded() -> None:
    """A run that failed on a response it would have got wrong does not look better for it."""
    gold = [1.0, 0.0, 1.0, 0.0]
    a = {
        r.key: r
        for r in (
            record("d", i, g, p)
            for i, (g, p) in enumerate(zip(gold, [1.0, 0.0, 1.0, None], strict=True))
        )
    }
    b = {
        r.key: r
        for r in (
            record("d", i, g, p)
            for i, (g, p) in enumerate(zip(gold, [1.0, 0.0, 1.0, 1.0], strict=True))
        )
    }
    paired, deltas, changed = compare_results(a, b, resamples=20)
    assert len(paired.common) == 4 and len(paired.graded) == 3
    for delta in deltas:
        if delta.delta is not None:
            assert delta.delta == 0.0, delta.metric
    assert [c.key for c in changed] == ["d:3"]  # ungraded -> correct is still listed


def test_compare_of_a_run_with_itself_matches_its_summary() -> None:
    results = [record("d", 1, 1.0, 1.0), record("d", 2, 0.0, 0.5), record("d", 3, 0.5, None)]
    by_key = {r.key: r for r in results}
    _, deltas, _ = compare_results(by_key, by_key, resamples=0)
    summary = summarise(results, resamples=0)
    for delta in deltas:
        assert delta.a == summary.overall.metric(delta.metric).value, delta.metric


def test_compare_decides_binary_gold_from_every_response_of_either_run() -> None:
    """Run A also graded a `partial`-gold response of dataset x that B lacks: x is three-class,
    so a partial verdict on a wrong answer is wrong in both."""
    a = {r.key: r for r in (record("x", 2, 0.0, 0.5), record("x", 3, 0.5, 0.5))}
    b = {r.key: r for r in (record("x", 2, 0.0, 0.5),)}
    _, deltas, _ = compare_results(a, b, resamples=0)
    accuracy = next(d for d in deltas if d.metric == "accuracy")
    assert accuracy.a == 0.0 and accuracy.b == 0.0
