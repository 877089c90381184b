"""Human rendering of a Grade and of a card's reference answer (rich renderables, no printing).

All text from decks, graders and learners goes into `rich.text.Text`, never through rich markup, so
brackets in an answer or in feedback are shown as typed.
"""

from __future__ import annotations

import re

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
_LIST_ITEM = re.compile(r"^(?P<indent>\s*)[-*]\s+(?P<rest>.*)$")
_EMPHASIS = re.compile(r"\*\*(?P<bold>[^*]+)\*\*|`(?P<code>[^`]+)`")


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
    parts: list[RenderableType] = [Text("Reference answer:", style="bold"), deck_text(card.answer)]
    if card.footnote:
        parts.append(Text("Footnote:", style="bold dim"))
        parts.append(deck_text(card.footnote, style="dim"))
    return Group(*parts)


def deck_text(text: str, style: str = "") -> Text:
    """Deck text in the Markdown subset decks use: `**bold**`, `` `code` ``, `- item` lines
    (shown as bullets), line breaks kept. Anything else is shown as typed: a full Markdown
    renderer would turn a cloze blank "- ____" into a horizontal rule and join lines."""
    out = Text(style=style)
    for number, line in enumerate(text.splitlines()):
        if number:
            out.append("\n")
        bullet = _LIST_ITEM.match(line)
        if bullet is not None:
            out.append(bullet.group("indent") + "• ")
            line = bullet.group("rest")
        position = 0
        for match in _EMPHASIS.finditer(line):
            out.append(line[position : match.start()])
            bold, code = match.group("bold"), match.group("code")
            out.append(bold if bold is not None else code, style="bold" if bold else "cyan")
            position = match.end()
        out.append(line[position:])
    return out
