"""Agreement metrics between human and grader scores, and bootstrap confidence intervals.

Scores are floats in [0, 1]; labels are strings. Every function returns None where the metric is
undefined (no items, or a constant series for a correlation) rather than NaN, so results stay
JSON-safe. numpy is imported inside the functions that need it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Label = str | int
"""A class label. Label metrics run fastest on small integer codes (see `encode_labels`)."""

QWK_LEVELS = 5
"""Scores in [0, 1] are put on a 5-level grid (0, .25, .5, .75, 1) for quadratic weighted kappa."""


class ConfusionMatrix(BaseModel):
    """Counts of gold label (rows) against predicted label (columns)."""

    model_config = ConfigDict(extra="forbid")

    labels: list[str]
    """Row and column labels, in order (as text)."""
    counts: list[list[int]]
    """counts[i][j]: items with gold labels[i] predicted as labels[j]."""


class Interval(BaseModel):
    """A metric value with its bootstrap confidence interval."""

    model_config = ConfigDict(extra="forbid")

    value: float | None
    """The metric on the full sample; None when undefined."""
    low: float | None = None
    """Lower bound of the confidence interval."""
    high: float | None = None
    """Upper bound of the confidence interval."""
    n: int = Field(default=0, ge=0)
    """Items the metric was computed on."""


def _check_pair(a: Sequence[Any], b: Sequence[Any]) -> None:
    if len(a) != len(b):
        raise ValueError(f"length mismatch: {len(a)} != {len(b)}")


def _floats(values: Sequence[float]) -> Any:
    import numpy as np

    return np.asarray(values, dtype=np.float64)


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson correlation; None with fewer than two items or a constant series."""
    _check_pair(x, y)
    if len(x) < 2:
        return None
    a = _floats(x)
    b = _floats(y)
    a = a - a.mean()
    b = b - b.mean()
    sxx = float((a * a).sum())
    syy = float((b * b).sum())
    if sxx <= 1e-12 or syy <= 1e-12:
        return None
    return max(-1.0, min(1.0, float((a * b).sum()) / math.sqrt(sxx * syy)))


def average_ranks(values: Sequence[float]) -> Any:
    """1-based ranks as a numpy array, ties sharing their average rank."""
    import numpy as np

    _, inverse, counts = np.unique(_floats(values), return_inverse=True, return_counts=True)
    upper = np.cumsum(counts)
    return (upper - (counts - 1) / 2.0)[inverse]


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman rank correlation (Pearson on average ranks)."""
    _check_pair(x, y)
    if len(x) < 2:
        return None
    return pearson(average_ranks(x), average_ranks(y))


def to_levels(scores: Sequence[float], levels: int = QWK_LEVELS) -> list[int]:
    """Map scores in [0, 1] to integer levels 0..levels-1 by rounding to the nearest grid point."""
    top = levels - 1
    return [min(top, max(0, math.floor(s * top + 0.5))) for s in scores]


def quadratic_weighted_kappa(
    gold: Sequence[int], pred: Sequence[int], levels: int | None = None
) -> float | None:
    """Cohen's kappa with quadratic weights on integer ratings 0..levels-1.

    None when undefined (no items, or both raters constant on the same value), and when the
    gold ratings never vary: kappa is then 0 whatever the predictions, which says nothing about
    them (Pearson and Spearman are undefined there too).
    """
    import numpy as np

    _check_pair(gold, pred)
    n = len(gold)
    if n == 0:
        return None
    g = np.asarray(gold, dtype=np.int64)
    p = np.asarray(pred, dtype=np.int64)
    if (g == g[0]).all():
        return None
    k = levels if levels is not None else int(max(g.max(), p.max())) + 1
    if k < 2:
        return None
    observed = np.bincount(g * k + p, minlength=k * k).reshape(k, k).astype(np.float64)
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    grid = np.arange(k)
    weights = (grid[:, None] - grid[None, :]) ** 2 / (k - 1) ** 2
    den = float((weights * expected).sum())
    if den == 0:
        return None
    return 1.0 - float((weights * observed).sum()) / den


def mean_absolute_error(gold: Sequence[float], pred: Sequence[float]) -> float | None:
    _check_pair(gold, pred)
    if len(gold) == 0:
        return None
    return float(abs(_floats(gold) - _floats(pred)).mean())


def _labels(values: Sequence[Label]) -> Any:
    import numpy as np

    return np.asarray(values)


def accuracy(gold: Sequence[Label], pred: Sequence[Label]) -> float | None:
    _check_pair(gold, pred)
    if len(gold) == 0:
        return None
    return float((_labels(gold) == _labels(pred)).mean())


def _per_label_f1(gold: Sequence[Label], pred: Sequence[Label]) -> tuple[Any, Any]:
    """F1 and gold support of every label seen in gold or predictions (numpy arrays)."""
    import numpy as np

    g = _labels(gold)
    p = _labels(pred)
    if g.dtype.kind in "iu" and p.dtype.kind in "iu" and min(g.min(), p.min()) >= 0:
        gc, pc = g, p
        k = int(max(g.max(), p.max())) + 1
    else:
        names, codes = np.unique(np.concatenate([g, p]), return_inverse=True)
        k = len(names)
        gc, pc = codes[: len(g)], codes[len(g) :]
    support = np.bincount(gc, minlength=k)
    predicted = np.bincount(pc, minlength=k)
    true_pos = np.bincount(gc[gc == pc], minlength=k)
    seen = (support + predicted) > 0
    f1 = 2 * true_pos[seen] / (support + predicted)[seen]
    return f1, support[seen]


def macro_f1(gold: Sequence[Label], pred: Sequence[Label]) -> float | None:
    """Unweighted mean of per-label F1 over the labels present in gold or predictions."""
    _check_pair(gold, pred)
    if len(gold) == 0:
        return None
    f1, _ = _per_label_f1(gold, pred)
    return float(f1.mean())


def weighted_f1(gold: Sequence[Label], pred: Sequence[Label]) -> float | None:
    """Per-label F1 weighted by gold support."""
    _check_pair(gold, pred)
    if len(gold) == 0:
        return None
    f1, support = _per_label_f1(gold, pred)
    return float((f1 * support).sum() / len(gold))


def confusion_matrix(
    gold: Sequence[Label], pred: Sequence[Label], labels: Sequence[Label] | None = None
) -> ConfusionMatrix:
    """Gold (rows) against predicted (columns); labels default to every label seen, sorted."""
    _check_pair(gold, pred)
    names = list(labels) if labels is not None else sorted(set(gold) | set(pred))
    index = {name: i for i, name in enumerate(names)}
    counts = [[0] * len(names) for _ in names]
    for g, p in zip(gold, pred, strict=True):
        if g in index and p in index:
            counts[index[g]][index[p]] += 1
    return ConfusionMatrix(labels=[str(name) for name in names], counts=counts)


def false_accept_rate(
    gold: Sequence[Label],
    pred: Sequence[Label],
    accept: Label = "correct",
    wrong: Label = "incorrect",
) -> float | None:
    """Share of gold-`wrong` answers the grader `accept`ed: the error learners exploit."""
    _check_pair(gold, pred)
    wrong_preds = _labels(pred)[_labels(gold) == wrong]
    if len(wrong_preds) == 0:
        return None
    return float((wrong_preds == accept).mean())


def bootstrap_ci(
    metric: Callable[..., float | None],
    *columns: Sequence[Any],
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of `metric(*columns)`, resampling items with replacement.

    Seeded, so the same inputs always give the same interval. Resamples where the metric is
    undefined are dropped; (None, None) when fewer than two items or no resample is defined.
    """
    import numpy as np

    if not columns:
        raise ValueError("bootstrap_ci needs at least one column")
    n = len(columns[0])
    for column in columns:
        _check_pair(columns[0], column)
    if n < 2 or n_resamples < 1:
        return None, None
    rng = np.random.default_rng(seed)
    values: list[float] = []
    cols = [np.asarray(c) for c in columns]
    for _ in range(n_resamples):
        idx = rng.integers(0, n, size=n)
        value = metric(*(col[idx] for col in cols))
        if value is not None and not math.isnan(value):
            values.append(value)
    if not values:
        return None, None
    alpha = (1 - confidence) / 2
    low, high = np.quantile(np.asarray(values), [alpha, 1 - alpha])
    return float(low), float(high)


MIN_FOR_INTERVAL = 10
"""Fewer observations than this get no interval: a percentile bootstrap of a handful of
responses says little, and often looks certain ([1.0, 1.0] from one wrong answer accepted)."""


def with_ci(
    metric: Callable[..., float | None],
    *columns: Sequence[Any],
    n_resamples: int = 1000,
    seed: int = 0,
    support: int | None = None,
) -> Interval:
    """The metric on the full sample plus its 95% bootstrap interval. `support`: how many of
    the rows the metric actually rests on (the false-accept rate: the wrong answers), when not
    all of them; it is the interval's `n`."""
    value = metric(*columns)
    n = (len(columns[0]) if columns else 0) if support is None else support
    if value is None or n < MIN_FOR_INTERVAL:
        return Interval(value=value, n=n)
    low, high = bootstrap_ci(metric, *columns, n_resamples=n_resamples, seed=seed)
    return Interval(value=value, low=low, high=high, n=n)
