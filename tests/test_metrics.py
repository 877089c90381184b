"""grader.metrics against values computed by hand (worked in the comments)."""

from __future__ import annotations

import math

import pytest

from grader import metrics as m


def test_pearson_hand_computed() -> None:
    # dx = dy-permuted [-1.5, -.5, .5, 1.5]: sxy = 2.25 - .25 - .25 + 2.25 = 4, sxx = syy = 5.
    assert m.pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert m.pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


def test_pearson_undefined_is_none() -> None:
    assert m.pearson([1.0, 1.0, 1.0], [0.0, 0.5, 1.0]) is None
    assert m.pearson([1.0], [1.0]) is None


def test_spearman_averages_ties() -> None:
    # ranks x = [1, 2.5, 2.5, 4], y = [1, 2, 3, 4]: sxy = 4.5, sxx = 4.5, syy = 5.
    assert list(m.average_ranks([1, 2, 2, 3])) == [1.0, 2.5, 2.5, 4.0]
    assert m.spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(22.5))
    assert m.spearman([1, 2, 3, 4], [1, 4, 9, 16]) == pytest.approx(1.0)


def test_quadratic_weighted_kappa_hand_computed() -> None:
    assert m.quadratic_weighted_kappa([0, 1, 2], [0, 1, 2]) == pytest.approx(1.0)
    # observed [[1,1],[1,1]] equals expected: kappa 0.
    assert m.quadratic_weighted_kappa([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0)
    # weights (i-j)^2/4; observed disagreement .25+.25 = .5, expected 1.375.
    assert m.quadratic_weighted_kappa([0, 1, 2, 2], [0, 2, 2, 1], levels=3) == pytest.approx(
        1 - 0.5 / 1.375
    )
    assert m.quadratic_weighted_kappa([], []) is None
    # constant gold: kappa would be 0 for any predictions, so it is undefined, like Pearson
    assert m.quadratic_weighted_kappa([4, 4, 4], [4, 3, 4], levels=5) is None
    # constant predictions against varying gold: no agreement beyond chance, a real 0
    assert m.quadratic_weighted_kappa([0, 2, 4], [2, 2, 2], levels=5) == pytest.approx(0.0)


def test_to_levels_rounds_to_quarter_grid() -> None:
    assert m.to_levels([0.0, 0.12, 0.13, 0.5, 0.874, 0.876, 1.0]) == [0, 0, 1, 2, 3, 4, 4]


def test_mean_absolute_error() -> None:
    assert m.mean_absolute_error([0, 0.5, 1], [0.25, 0.5, 0]) == pytest.approx(1.25 / 3)
    assert m.mean_absolute_error([], []) is None


GOLD = ["correct", "correct", "incorrect", "incorrect", "partial"]
PRED = ["correct", "incorrect", "incorrect", "correct", "partial"]


def test_label_metrics_hand_computed() -> None:
    # per-label F1: correct .5, incorrect .5, partial 1.
    assert m.accuracy(GOLD, PRED) == pytest.approx(0.6)
    assert m.macro_f1(GOLD, PRED) == pytest.approx(2 / 3)
    assert m.weighted_f1(GOLD, PRED) == pytest.approx((0.5 * 2 + 0.5 * 2 + 1) / 5)
    # of the two gold-incorrect answers one was accepted as correct.
    assert m.false_accept_rate(GOLD, PRED) == pytest.approx(0.5)


def test_label_metrics_same_on_integer_codes() -> None:
    code = {"correct": 0, "partial": 1, "incorrect": 2}
    gold = [code[x] for x in GOLD]
    pred = [code[x] for x in PRED]
    assert m.macro_f1(gold, pred) == pytest.approx(2 / 3)
    assert m.weighted_f1(gold, pred) == pytest.approx(0.6)
    assert m.false_accept_rate(gold, pred, accept=0, wrong=2) == pytest.approx(0.5)
    # a code absent from both sides does not drag the macro average down
    assert m.macro_f1([0, 2], [0, 2]) == pytest.approx(1.0)


def test_confusion_matrix() -> None:
    cm = m.confusion_matrix(GOLD, PRED)
    assert cm.labels == ["correct", "incorrect", "partial"]
    assert cm.counts == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]
    fixed = m.confusion_matrix(["a"], ["b"], labels=["b", "a"])
    assert fixed.counts == [[0, 0], [1, 0]]


def test_false_accept_rate_none_without_wrong_answers() -> None:
    assert m.false_accept_rate(["correct"], ["correct"]) is None


def test_length_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="length mismatch"):
        m.pearson([1, 2], [1])


def test_bootstrap_ci_is_seeded_and_brackets_value() -> None:
    gold = [i / 20 for i in range(21)]
    pred = [min(1.0, g + (0.1 if i % 3 else -0.1)) for i, g in enumerate(gold)]
    first = m.with_ci(m.mean_absolute_error, gold, pred, n_resamples=200, seed=7)
    again = m.with_ci(m.mean_absolute_error, gold, pred, n_resamples=200, seed=7)
    assert first == again
    assert first.low is not None and first.high is not None and first.value is not None
    assert first.low <= first.value <= first.high
    assert first.n == 21


def test_bootstrap_ci_undefined_metric() -> None:
    interval = m.with_ci(m.pearson, [1.0, 1.0, 1.0], [0.0, 0.5, 1.0])
    assert interval.value is None and interval.low is None
    assert m.bootstrap_ci(m.mean_absolute_error, [1.0], [1.0]) == (None, None)


def test_an_interval_needs_ten_observations_and_the_false_accept_rate_counts_wrong_answers() -> (
    None
):
    gold, pred = [0.0, 1.0] * 5, [0.1, 0.8] * 5
    assert m.with_ci(m.mean_absolute_error, gold[:9], pred[:9]).low is None
    ten = m.with_ci(m.mean_absolute_error, gold, pred, n_resamples=50)
    assert ten.n == 10 and ten.low is not None and ten.high is not None
    assert ten.low <= ten.value <= ten.high
    # 10 responses, but the rate rests on its 5 wrong answers: no interval, and n says 5
    codes = [1, 0] * 5  # 0 = correct, 1 = incorrect

    def far(g: list[int], p: list[int]) -> float | None:
        return m.false_accept_rate(g, p, accept=0, wrong=1)

    rate = m.with_ci(far, codes, [0] * 10, support=codes.count(1))
    assert (rate.value, rate.n, rate.low) == (1.0, 5, None)
