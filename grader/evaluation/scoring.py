"""Metrics of a run: agreement between human and grader scores, overall and per slice.

Scores are normalised to [0, 1]. Gold classes come from the `label` when it is a known one
(`correct`, `partially correct`, `incorrect`, `contradictory`, ...), else from the human score with
the same thresholds as verdicts. A dataset whose gold is binary (no `partial` anywhere in it)
counts a predicted `partial` as not correct, in every slice its responses fall in; a slice of
such datasets only is scored on the two classes. Whether gold is binary is a property of the
dataset, never of a slice: a `wrong` kind of a three-class dataset has no `partial` gold, and a
grader hedging `partial` there is wrong. Ungraded responses are counted and excluded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from grader import metrics as m
from grader.evaluation.runner import ResultRecord
from grader.models import verdict_for_score

CLASSES = ("correct", "partial", "incorrect")
LABEL_CLASSES = {
    "correct": "correct",
    "partially correct": "partial",
    "partially_correct": "partial",
    "partial": "partial",
    "incorrect": "incorrect",
    "contradictory": "incorrect",
    "wrong": "incorrect",
    "irrelevant": "incorrect",
    "non_domain": "incorrect",
}
SCORE_METRICS = ("pearson", "spearman", "qwk", "mae")
CLASS_METRICS = ("accuracy", "macro_f1", "weighted_f1", "false_accept_rate")
LOWER_IS_BETTER = frozenset({"mae", "false_accept_rate"})
METRICS = SCORE_METRICS + CLASS_METRICS


class SliceMetrics(BaseModel):
    """Every metric over one slice of the responses (all, one dataset, one split, one kind)."""

    model_config = ConfigDict(extra="forbid")

    n: int
    """Responses in the slice."""
    graded: int
    ungraded: int
    """Responses the grader failed on: counted here, excluded from every metric."""
    pearson: m.Interval
    spearman: m.Interval
    qwk: m.Interval
    """Quadratic weighted kappa on the 5-level grid 0, .25, .5, .75, 1."""
    mae: m.Interval
    classes: list[str]
    """Class labels used for the class metrics (binary gold: correct / incorrect)."""
    accuracy: m.Interval
    macro_f1: m.Interval
    weighted_f1: m.Interval
    false_accept_rate: m.Interval
    """Gold-incorrect answers graded correct."""
    confusion: m.ConfusionMatrix

    def metric(self, name: str) -> m.Interval:
        value = getattr(self, name)
        if not isinstance(value, m.Interval):
            raise KeyError(name)
        return value


class EvalSummary(BaseModel):
    """Metrics of a run, overall and sliced."""

    model_config = ConfigDict(extra="forbid")

    overall: SliceMetrics
    by_dataset: dict[str, SliceMetrics] = Field(default_factory=dict)
    by_split: dict[str, SliceMetrics] = Field(default_factory=dict)
    by_kind: dict[str, SliceMetrics] = Field(default_factory=dict)
    bootstrap_resamples: int
    confidence: float = 0.95


def gold_class(result: ResultRecord) -> str:
    if result.label is not None:
        known = LABEL_CLASSES.get(result.label.strip().lower())
        if known is not None:
            return known
    return verdict_for_score(result.gold)


def binary_datasets(results: Sequence[ResultRecord]) -> frozenset[str]:
    """The datasets whose gold never says `partial` (graded responses or not)."""
    partial = {r.dataset for r in results if gold_class(r) == "partial"}
    return frozenset(r.dataset for r in results if r.dataset not in partial)


def class_view(
    graded: Sequence[ResultRecord], binary: frozenset[str]
) -> tuple[list[str], list[str], list[str]]:
    """The class labels of a slice, and its graded responses' gold and predicted classes (a
    `partial` verdict on a response of a binary dataset counts as `incorrect`)."""
    gold_classes = [gold_class(r) for r in graded]
    pred_classes = [
        "incorrect" if r.dataset in binary and r.verdict == "partial" else r.verdict for r in graded
    ]
    two = bool(graded) and all(r.dataset in binary for r in graded)
    classes = ["correct", "incorrect"] if two else list(CLASSES)
    return classes, gold_classes, pred_classes


def slice_metrics(
    results: Sequence[ResultRecord],
    *,
    binary: frozenset[str] | None = None,
    resamples: int = 1000,
) -> SliceMetrics:
    """Every metric of `results`; `binary`: the run's binary datasets (default: those among
    `results`, right when they are the whole run)."""
    if binary is None:
        binary = binary_datasets(results)
    graded = [r for r in results if r.predicted_score is not None]
    gold = [r.gold for r in graded]
    pred = [float(r.predicted_score) for r in graded if r.predicted_score is not None]
    classes, gold_classes, pred_classes = class_view(graded, binary)
    code = {name: i for i, name in enumerate(classes)}
    gold_codes = [code[c] for c in gold_classes]
    pred_codes = [code[c] for c in pred_classes]

    def ci(
        metric: Callable[..., float | None], *columns: Sequence[Any], support: int | None = None
    ) -> m.Interval:
        return m.with_ci(metric, *columns, n_resamples=resamples, support=support)

    def far(g: Sequence[int], p: Sequence[int]) -> float | None:
        return m.false_accept_rate(g, p, accept=code["correct"], wrong=code["incorrect"])

    return SliceMetrics(
        n=len(results),
        graded=len(graded),
        ungraded=len(results) - len(graded),
        pearson=ci(m.pearson, gold, pred),
        spearman=ci(m.spearman, gold, pred),
        qwk=ci(_qwk, m.to_levels(gold), m.to_levels(pred)),
        mae=ci(m.mean_absolute_error, gold, pred),
        classes=classes,
        accuracy=ci(m.accuracy, gold_codes, pred_codes),
        macro_f1=ci(m.macro_f1, gold_codes, pred_codes),
        weighted_f1=ci(m.weighted_f1, gold_codes, pred_codes),
        false_accept_rate=ci(
            far, gold_codes, pred_codes, support=gold_codes.count(code["incorrect"])
        ),
        confusion=m.confusion_matrix(gold_classes, pred_classes, labels=classes),
    )


def _qwk(gold: Sequence[int], pred: Sequence[int]) -> float | None:
    return m.quadratic_weighted_kappa(gold, pred, levels=m.QWK_LEVELS)


def _slices(
    results: Sequence[ResultRecord], key: Callable[[ResultRecord], str | None]
) -> dict[str, list[ResultRecord]]:
    groups: dict[str, list[ResultRecord]] = {}
    for r in results:
        name = key(r)
        if name is not None:
            groups.setdefault(name, []).append(r)
    return groups


def summarise(results: Sequence[ResultRecord], *, resamples: int = 1000) -> EvalSummary:
    """Overall metrics plus one slice per dataset (when several), split and kind."""
    binary = binary_datasets(results)

    def sliced(key: Callable[[ResultRecord], str | None]) -> dict[str, SliceMetrics]:
        groups = _slices(results, key)
        return {
            k: slice_metrics(v, binary=binary, resamples=resamples)
            for k, v in sorted(groups.items())
        }

    by_dataset = sliced(lambda r: r.dataset)
    return EvalSummary(
        overall=slice_metrics(results, binary=binary, resamples=resamples),
        by_dataset=by_dataset if len(by_dataset) > 1 else {},
        by_split=sliced(lambda r: r.split),
        by_kind=sliced(lambda r: r.kind),
        bootstrap_resamples=resamples,
    )


GRADED = "graded"
"""A `--fail-under` gate of its own: the share of responses that were graded."""


def parse_threshold(text: str) -> tuple[str, float]:
    """`METRIC=VALUE` from `--fail-under`; ValueError naming the problem."""
    name, sep, value = text.partition("=")
    name = name.strip().lower().replace("-", "_")
    if not sep or name not in (*METRICS, GRADED):
        raise ValueError(
            f"--fail-under {text!r}: expected METRIC=VALUE with METRIC one of "
            f"{', '.join(METRICS)} or {GRADED} (the share of responses graded)"
        )
    try:
        limit = float(value)
    except ValueError:
        raise ValueError(f"--fail-under {text!r}: {value!r} is not a number") from None
    if not math.isfinite(limit):
        raise ValueError(f"--fail-under {text!r}: the value must be a finite number")
    if name == GRADED and not 0 <= limit <= 1:
        raise ValueError(f"--fail-under {text!r}: {GRADED} is a share, from 0 to 1")
    return name, limit


def gates(thresholds: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    """The thresholds a run is held to: those given, plus every response graded (`graded=1`)
    unless they set the share themselves. Metrics cover only the graded responses, so a run
    that graded 6 of 100 must not pass a gate on the 6."""
    if thresholds and GRADED not in {name for name, _ in thresholds}:
        return [*thresholds, (GRADED, 1.0)]
    return list(thresholds)


def failed_thresholds(summary: EvalSummary, thresholds: Sequence[tuple[str, float]]) -> list[str]:
    """One message per unmet threshold of `gates(thresholds)` (lower-is-better metrics fail when
    above the value)."""
    overall = summary.overall
    failures: list[str] = []
    for name, limit in gates(thresholds):
        if name == GRADED:
            share = overall.graded / overall.n if overall.n else 0.0
            if share < limit:
                failures.append(
                    f"{overall.ungraded} of {overall.n} responses ungraded ({GRADED} "
                    f"{share:.3f} < {limit}): the metrics cover only part of the data"
                )
            continue
        value = overall.metric(name).value
        if value is None:
            failures.append(f"{name} is undefined on this data (limit {limit})")
        elif name in LOWER_IS_BETTER and value > limit:
            failures.append(f"{name} {value:.3f} > {limit} (at most {limit} allowed)")
        elif name not in LOWER_IS_BETTER and value < limit:
            failures.append(f"{name} {value:.3f} < {limit}")
    return failures
