"""`grader eval compare RUN_A RUN_B`: metric deltas with paired bootstrap CIs, and changed grades.

Both runs are scored on the responses they have in common (matched by `<dataset>:<line>`) and
both graded: a response one run left ungraded is left out of both, so a run that fails on the
hard responses cannot look better for it (the counts are reported). Each bootstrap resample
draws the same responses for both runs, so the interval is of the paired delta.

Keys only pair like with like when a dataset name means the same file in both runs: a dataset
both runs have responses from must have the same SHA-256 in both specs, or the comparison is
refused (a `--limit` run of a file still compares with a full run of it: the hash is of the whole
file).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from grader import metrics as m
from grader.errors import InputError
from grader.evaluation import runner
from grader.evaluation.dataset import DatasetFile
from grader.evaluation.runner import ResultRecord, RunSpec
from grader.evaluation.scoring import METRICS, binary_datasets, class_view

CHANGE_AT = 0.25
"""A response 'changed' when its verdict changed or its score moved by at least this much."""


class MetricDelta(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str
    a: float | None
    b: float | None
    delta: float | None
    """b - a."""
    low: float | None = None
    high: float | None = None


class ChangedGrade(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str
    id: str | int
    gold: float
    verdict_a: str
    score_a: float | None
    verdict_b: str
    score_b: float | None
    feedback_b: str = ""


class Comparison(BaseModel):
    model_config = ConfigDict(extra="forbid")

    run_a: str
    run_b: str
    grader_a: str
    grader_b: str
    common: int
    """Responses present in both runs."""
    graded_both: int
    """Of those, the responses both runs graded: the metrics are over these."""
    ungraded_a: int
    """Common responses run A left ungraded."""
    ungraded_b: int
    only_a: int
    only_b: int
    deltas: list[MetricDelta]
    changed: list[ChangedGrade] = Field(default_factory=list)
    bootstrap_resamples: int


def _metric_functions(code: dict[str, int]) -> dict[str, Callable[..., float | None]]:
    """Each metric as f(gold, pred, gold_codes, pred_codes) over numpy arrays."""

    def qwk(g: Any, p: Any, gc: Any, pc: Any) -> float | None:
        return m.quadratic_weighted_kappa(
            m.to_levels(g.tolist()), m.to_levels(p.tolist()), levels=m.QWK_LEVELS
        )

    return {
        "pearson": lambda g, p, gc, pc: m.pearson(g, p),
        "spearman": lambda g, p, gc, pc: m.spearman(g, p),
        "qwk": qwk,
        "mae": lambda g, p, gc, pc: m.mean_absolute_error(g, p),
        "accuracy": lambda g, p, gc, pc: m.accuracy(gc, pc),
        "macro_f1": lambda g, p, gc, pc: m.macro_f1(gc, pc),
        "weighted_f1": lambda g, p, gc, pc: m.weighted_f1(gc, pc),
        "false_accept_rate": lambda g, p, gc, pc: m.false_accept_rate(
            gc, pc, accept=code["correct"], wrong=code["incorrect"]
        ),
    }


def _changed(a: ResultRecord, b: ResultRecord) -> bool:
    if a.verdict != b.verdict:
        return True
    if a.predicted_score is None or b.predicted_score is None:
        return False
    return abs(a.predicted_score - b.predicted_score) >= CHANGE_AT


@dataclass(frozen=True)
class PairedResults:
    """The common responses of two runs, and those both graded (the metrics' responses)."""

    common: list[str]
    graded: list[str]


def pair(results_a: dict[str, ResultRecord], results_b: dict[str, ResultRecord]) -> PairedResults:
    common = [k for k in results_a if k in results_b]
    if not common:
        raise InputError("the two runs have no responses in common")
    graded = [
        k
        for k in common
        if results_a[k].predicted_score is not None and results_b[k].predicted_score is not None
    ]
    return PairedResults(common, graded)


def _short_hashes(a: str, b: str, length: int = 8) -> tuple[str, str]:
    """Prefixes of two different hashes, long enough to tell them apart."""
    while length < max(len(a), len(b)) and a[:length] == b[:length]:
        length += 4
    return a[:length], b[:length]


def _label(a: DatasetFile, b: DatasetFile) -> str:
    """The file name when both runs read a file of that name (the usual case), else the name."""
    file_a, file_b = Path(a.path).name, Path(b.path).name
    if file_a == file_b and Path(a.path).stem == a.name:
        return file_a
    return f"dataset {a.name} ({file_a} in A, {file_b} in B)"


def check_same_datasets(
    spec_a: RunSpec,
    spec_b: RunSpec,
    results_a: dict[str, ResultRecord],
    results_b: dict[str, ResultRecord],
) -> None:
    """Refuse when a dataset both runs have responses from is a different file in each: its keys
    would pair unrelated responses. Where a spec has no hash for it (edited by hand, or from
    elsewhere), the paired responses themselves must agree: same id and human grade."""
    hashes_a = {d.name: d for d in spec_a.datasets if d.sha256}
    hashes_b = {d.name: d for d in spec_b.datasets if d.sha256}
    in_both = {r.dataset for r in results_a.values()} & {r.dataset for r in results_b.values()}
    for name in sorted(in_both):
        a, b = hashes_a.get(name), hashes_b.get(name)
        if a is not None and b is not None:
            if a.sha256 != b.sha256:
                short_a, short_b = _short_hashes(a.sha256, b.sha256)
                raise InputError(
                    f"cannot compare: {_label(a, b)} differs between the runs "
                    f"(sha256 {short_a} in A, {short_b} in B)"
                )
            continue
        for key, record_a in results_a.items():
            record_b = results_b.get(key)
            if record_a.dataset != name or record_b is None:
                continue
            # str(): a run from before ids kept their type stored 7 as "7"
            if (str(record_a.id), record_a.gold) != (str(record_b.id), record_b.gold):
                raise InputError(
                    f"cannot compare: dataset {name} is not the same file in both runs "
                    f"(no hash in a run spec, and line {record_a.line} is response "
                    f"{record_a.id!r} graded {record_a.gold:g} by a person in A, "
                    f"{record_b.id!r} graded {record_b.gold:g} in B)"
                )


def compare_results(
    results_a: dict[str, ResultRecord],
    results_b: dict[str, ResultRecord],
    *,
    resamples: int = 1000,
    seed: int = 0,
) -> tuple[PairedResults, list[MetricDelta], list[ChangedGrade]]:
    import numpy as np

    paired = pair(results_a, results_b)
    keys = paired.graded
    binary = binary_datasets([*results_a.values(), *results_b.values()])
    # both runs graded the same responses, so their classes and gold are the same
    classes, gold_classes, _ = class_view([results_a[k] for k in keys], binary)
    code = {name: i for i, name in enumerate(classes)}
    runs = []
    for results in (results_a, results_b):
        pred_classes = class_view([results[k] for k in keys], binary)[2]
        pred = np.asarray([results[k].predicted_score for k in keys], dtype=np.float64)
        runs.append((pred, np.asarray([code[c] for c in pred_classes], dtype=np.int64)))
    gold = np.asarray([results_a[k].gold for k in keys], dtype=np.float64)
    gc = np.asarray([code[c] for c in gold_classes], dtype=np.int64)
    functions = _metric_functions(code)

    def evaluate(name: str, idx: Any, run: int) -> float | None:
        if len(idx) == 0:
            return None
        pred, codes = runs[run]
        return functions[name](gold[idx], pred[idx], gc[idx], codes[idx])

    everything = np.arange(len(keys))
    rng = np.random.default_rng(seed)
    samples = [rng.integers(0, len(keys), size=len(keys)) for _ in range(resamples)] if keys else []
    deltas = []
    wrong = int(np.count_nonzero(gc == code["incorrect"]))
    for name in METRICS:
        a = evaluate(name, everything, 0)
        b = evaluate(name, everything, 1)
        delta = None if a is None or b is None else b - a
        low = high = None
        support = wrong if name == "false_accept_rate" else len(keys)
        if delta is not None and support >= m.MIN_FOR_INTERVAL and samples:
            values = []
            for idx in samples:
                va = evaluate(name, idx, 0)
                vb = evaluate(name, idx, 1)
                if va is not None and vb is not None:
                    values.append(vb - va)
            if values:
                low, high = (float(x) for x in np.quantile(values, [0.025, 0.975]))
        deltas.append(MetricDelta(metric=name, a=a, b=b, delta=delta, low=low, high=high))

    changed = [
        ChangedGrade(
            key=k,
            id=results_b[k].id,
            gold=results_b[k].gold,
            verdict_a=results_a[k].verdict,
            score_a=results_a[k].predicted_score,
            verdict_b=results_b[k].verdict,
            score_b=results_b[k].predicted_score,
            feedback_b=results_b[k].grade.feedback,
        )
        for k in paired.common
        if _changed(results_a[k], results_b[k])
    ]
    changed.sort(
        key=lambda c: (
            -abs((c.score_b if c.score_b is not None else 0.0) - (c.score_a or 0.0)),
            c.key,
        )
    )
    return paired, deltas, changed


def compare_runs(home: Path, run_a: str, run_b: str, *, resamples: int = 1000) -> Comparison:
    dir_a = runner.resolve_run(home, run_a)
    dir_b = runner.resolve_run(home, run_b)
    spec_a = runner.read_spec(dir_a)
    spec_b = runner.read_spec(dir_b)
    results_a = runner.read_results(dir_a)
    results_b = runner.read_results(dir_b)
    check_same_datasets(spec_a, spec_b, results_a, results_b)
    paired, deltas, changed = compare_results(results_a, results_b, resamples=resamples)
    return Comparison(
        run_a=spec_a.run_id,
        run_b=spec_b.run_id,
        grader_a=spec_a.grader + (f" {spec_a.model}" if spec_a.model else ""),
        grader_b=spec_b.grader + (f" {spec_b.model}" if spec_b.model else ""),
        common=len(paired.common),
        graded_both=len(paired.graded),
        ungraded_a=sum(results_a[k].predicted_score is None for k in paired.common),
        ungraded_b=sum(results_b[k].predicted_score is None for k in paired.common),
        only_a=len(set(results_a) - set(results_b)),
        only_b=len(set(results_b) - set(results_a)),
        deltas=deltas,
        changed=changed,
        bootstrap_resamples=resamples,
    )
