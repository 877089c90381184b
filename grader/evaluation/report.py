"""The eval report: `report.md` plus PNG charts (confusion matrix, calibration, per-kind bars).

Learner text is untrusted: it only ever appears inside fenced code blocks whose fence is longer
than any backtick or tilde run in the text, so it cannot inject Markdown, HTML or links.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from grader.atomic import write_text_atomic
from grader.evaluation.dataset import EvalItem
from grader.evaluation.runner import ResultRecord, RunSpec
from grader.evaluation.scoring import METRICS, EvalSummary, SliceMetrics
from grader.metrics import Interval

REPORT_FILE = "report.md"
DISAGREEMENTS = 15
MAX_TEXT = 600
AGREE_WITHIN = 0.05
"""A score this close to the human one (both on 0-1) is agreement, not a disagreement to list."""


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def fenced(text: str) -> str:
    """`text` as a fenced block that nothing inside it can close."""
    clipped = text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + " [...]"
    longest = max((len(m) for m in re.findall(r"`+|~+", clipped)), default=0)
    fence = "~" * max(3, longest + 1)
    return f"{fence}text\n{clipped}\n{fence}"


def _metric_table(sm: SliceMetrics) -> list[str]:
    lines = ["| metric | value | 95% CI |", "|---|---|---|"]
    for name in METRICS:
        interval = sm.metric(name)
        ci = "" if interval.low is None else f"[{_fmt(interval.low)}, {_fmt(interval.high)}]"
        lines.append(f"| {name} | {_fmt(interval.value)} | {ci} |")
    return lines


def _slice_table(title: str, slices: dict[str, SliceMetrics]) -> list[str]:
    if not slices:
        return []
    header = "| slice | n | ungraded | " + " | ".join(METRICS) + " |"
    lines = [f"## {title}", "", header, "|" + "---|" * (len(METRICS) + 3)]
    for name, sm in slices.items():
        values = " | ".join(with_interval(sm.metric(m)) for m in METRICS)
        lines.append(f"| {_cell(name)} | {sm.n} | {sm.ungraded} | {values} |")
    return [*lines, "", "Each cell: the value, then its 95% CI in brackets when there is one.", ""]


def with_interval(interval: Interval, between: str = " ") -> str:
    """A slice's metric as a table cell: the value, then its 95% CI when it has one (the
    terminal puts it on a line of its own)."""
    if interval.low is None or interval.high is None:
        return _fmt(interval.value)
    return f"{_fmt(interval.value)}{between}[{interval.low:.2f}, {interval.high:.2f}]"


def _confusion_table(sm: SliceMetrics) -> list[str]:
    labels = sm.confusion.labels
    lines = [
        "| human \\ grader | " + " | ".join(labels) + " |",
        "|" + "---|" * (len(labels) + 1),
    ]
    for label, row in zip(labels, sm.confusion.counts, strict=True):
        lines.append(f"| {label} | " + " | ".join(str(c) for c in row) + " |")
    return lines


def write_report(
    directory: Path,
    spec: RunSpec,
    summary: EvalSummary,
    results: Sequence[ResultRecord],
    items: Sequence[EvalItem],
) -> Path:
    """Write report.md and its charts into `directory`; return the report's path."""
    directory.mkdir(parents=True, exist_ok=True)
    charts = write_charts(directory, summary, results)
    by_key = {item.key: item for item in items}
    overall = summary.overall
    lines = [
        f"# Eval report: run {spec.run_id}",
        "",
        f"- grader: {spec.grader}" + (f", model {spec.model}" if spec.model else ""),
        f"- endpoint: {spec.base_url or '-'}; prompt hash: {spec.prompt_hash or '-'}",
        f"- git revision: {spec.git_revision or '-'}; code hash: {spec.code_hash or '-'}; "
        f"created {spec.created_at}",
        f"- packages: {', '.join(f'{k} {v}' for k, v in spec.package_versions.items())}",
    ]
    for d in spec.datasets:
        lines.append(f"- dataset `{d.name}`: {d.records} responses, sha256 {d.sha256[:16]}...")
    lines += [
        f"- responses: {overall.n}, graded {overall.graded}, ungraded {overall.ungraded} "
        "(ungraded are excluded from every metric)",
        f"- 95% CIs: percentile bootstrap, {summary.bootstrap_resamples} resamples, seed 0",
        "",
        "## Overall",
        "",
        *_metric_table(overall),
        "",
        "## Confusion matrix (rows: human, columns: grader)",
        "",
        *_confusion_table(overall),
        "",
    ]
    lines += [f"![{name}]({path.name})" for name, path in charts.items()]
    lines.append("")
    lines += _slice_table("Per dataset", summary.by_dataset)
    lines += _slice_table("Per split", summary.by_split)
    lines += _slice_table("Per kind", summary.by_kind)
    lines += _disagreements(results, by_key)
    lines += _ungraded(results)
    path = directory / REPORT_FILE
    write_text_atomic(path, "\n".join(lines).rstrip() + "\n")
    return path


def _disagreements(results: Sequence[ResultRecord], by_key: dict[str, EvalItem]) -> list[str]:
    disagreeing = [
        r
        for r in results
        if r.predicted_score is not None and abs(r.predicted_score - r.gold) >= AGREE_WITHIN
    ]
    disagreeing.sort(key=lambda r: (-abs((r.predicted_score or 0.0) - r.gold), r.key))
    shown = min(DISAGREEMENTS, len(disagreeing))
    lines = [f"## Largest disagreements (top {shown} of {len(disagreeing)})", ""]
    if not disagreeing:
        lines += [f"Every graded score is within {AGREE_WITHIN} of the human one.", ""]
    for r in disagreeing[:DISAGREEMENTS]:
        item = by_key.get(r.key)
        lines.append(
            f"### {_cell(r.key)} (id {_cell(str(r.id))}): human {r.gold:.2f}, "
            f"grader {_fmt(r.predicted_score)} {r.verdict}"
        )
        lines.append("")
        if item is not None:
            record = item.record
            lines += [
                f"Human grade: {record.score:g} / {record.score_max:g}"
                + (f" ({_cell(record.label)})" if record.label else ""),
                "",
                "Question:",
                "",
                fenced(record.question),
                "",
                "Answer:",
                "",
                fenced(record.student_answer),
                "",
            ]
        explanation = r.grade.feedback or "(no feedback)"
        missed = r.grade.points_missed
        lines += ["Grader's explanation:", "", fenced(explanation), ""]
        if missed:
            lines += ["Key points not hit:", "", fenced("\n".join(missed)), ""]
    return lines


def _ungraded(results: Sequence[ResultRecord]) -> list[str]:
    failed = [r for r in results if r.predicted_score is None]
    if not failed:
        return []
    lines = [f"## Ungraded ({len(failed)})", ""]
    for r in failed[:20]:
        lines.append(f"- {_cell(r.key)}: {_cell(r.grade.reason or '')}")
    return [*lines, ""]


def write_charts(
    directory: Path, summary: EvalSummary, results: Sequence[ResultRecord]
) -> dict[str, Path]:
    """confusion.png, calibration.png and per_kind.png (per dataset when there are no kinds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    charts: dict[str, Path] = {}
    overall = summary.overall

    fig, ax = plt.subplots(figsize=(4.5, 4))
    counts = overall.confusion.counts
    ax.imshow(counts, cmap="Blues")
    labels = overall.confusion.labels
    ax.set_xticks(range(len(labels)), labels)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("grader")
    ax.set_ylabel("human")
    peak = max((c for row in counts for c in row), default=0)
    for i, row in enumerate(counts):
        for j, count in enumerate(row):
            colour = "white" if peak and count > peak / 2 else "black"
            ax.text(j, i, str(count), ha="center", va="center", color=colour)
    ax.set_title("Confusion matrix")
    fig.tight_layout()
    charts["confusion matrix"] = _save(fig, directory / "confusion.png")

    graded = [r for r in results if r.predicted_score is not None]
    fig, ax = plt.subplots(figsize=(4.5, 4))
    if graded:
        bins: dict[int, list[tuple[float, float]]] = {}
        for r in graded:
            b = min(9, int((r.predicted_score or 0.0) * 10))
            bins.setdefault(b, []).append((r.predicted_score or 0.0, r.gold))
        xs = [sum(p for p, _ in v) / len(v) for _, v in sorted(bins.items())]
        ys = [sum(g for _, g in v) / len(v) for _, v in sorted(bins.items())]
        sizes = [20 + 180 * len(v) / len(graded) for _, v in sorted(bins.items())]
        ax.scatter(xs, ys, s=sizes)
        ax.plot(xs, ys)
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("predicted score (bin mean)")
    ax.set_ylabel("human score (mean)")
    ax.set_title("Calibration")
    fig.tight_layout()
    charts["calibration"] = _save(fig, directory / "calibration.png")

    slices = summary.by_kind or summary.by_dataset or summary.by_split
    if slices:
        names = list(slices)
        fig, ax = plt.subplots(figsize=(max(4.5, 0.6 * len(names) + 2), 4))
        width = 0.4
        acc = [slices[n].accuracy.value or 0.0 for n in names]
        mae = [slices[n].mae.value or 0.0 for n in names]
        positions = range(len(names))
        ax.bar([p - width / 2 for p in positions], acc, width, label="accuracy")
        ax.bar([p + width / 2 for p in positions], mae, width, label="MAE")
        ax.set_xticks(list(positions), names, rotation=45, ha="right")
        ax.set_ylim(0, 1)
        ax.legend()
        ax.set_title("Per kind" if summary.by_kind else "Per slice")
        fig.tight_layout()
        charts["per kind"] = _save(fig, directory / "per_kind.png")
    return charts


def _save(fig: object, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=100)  # type: ignore[attr-defined]
    plt.close(fig)  # type: ignore[arg-type]
    return path
