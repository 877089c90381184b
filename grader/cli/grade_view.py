"""Human rendering of a Grade and of a card's reference answer (rich renderables, no printing).

All text from decks, graders and learners goes into `rich.text.Text`, never through rich markup, so
brackets in an answer or in feedback are shown as typed.
"""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.text import Text

from grader.models import Card, Grade

VERDICT_STYLES = {
    "correct": "bold green",
    "partial": "bold yellow",
    "incorrect": "bold red",
    "ungraded": "bold magenta",
}
POINT_MARKS = {"hit": ("✓", "green"), "partial": ("~", "yellow"), "missed": ("✗", "red")}


def render_grade(grade: Grade) -> RenderableType:
    """Verdict and score, key points hit and missed, misconceptions, feedback."""
    lines: list[RenderableType] = []
    head = Text()
    head.append(grade.verdict.upper(), style=VERDICT_STYLES[grade.verdict])
    if grade.score is not None:
        head.append(f"  score {grade.score:.2f}")
    head.append(f"  ({grade.evidence.grader} grader)", style="dim")
    lines.append(head)
    if grade.verdict == "ungraded":
        lines.append(Text(f"Could not grade: {grade.reason}", style="magenta"))
    for point in grade.key_points:
        mark, style = POINT_MARKS[point.status]
        line = Text(f"  {mark} ", style=style)
        line.append(point.point)
        lines.append(line)
    for misconception in grade.misconceptions:
        line = Text("  ! ", style="red")
        line.append(misconception)
        lines.append(line)
    if grade.feedback:
        lines.append(Text(grade.feedback, style="italic"))
    return Group(*lines)


def render_reference(card: Card) -> RenderableType:
    """The reference answer, then the footnote when the card has one."""
    parts: list[RenderableType] = [Text("Reference answer:", style="bold"), Text(card.answer)]
    if card.footnote:
        parts.append(Text(card.footnote, style="dim"))
    return Group(*parts)
