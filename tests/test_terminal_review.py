"""`grader review` in a real terminal (pexpect), as a person would: approve, edit, reject."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pexpect
import pytest

from grader.deckfile import check_deck, load_deck
from grader.expand.proposals import load_proposals

pytestmark = pytest.mark.terminal

REPO = Path(__file__).resolve().parent.parent
GRADER = Path(sys.executable).parent / "grader"
PROMPT = re.escape("[a]pprove  [e]dit  [r]eject  [g]regenerate  [s]kip  [q]uit > ")

EDITOR_SCRIPT = """
import re, sys
path = sys.argv[1]
text = open(path, encoding="utf-8").read()
new = "question: Which CRISP-DM step defines the success criteria?"
text = re.sub(r"(?m)^question: .*$", new, text)
text = re.sub(r"(?m)^answer: .*$", "answer: Business understanding", text)
open(path, "w", encoding="utf-8").write(text)
"""


def test_review_in_a_terminal(tmp_path: Path, grader_home: Path) -> None:
    deck = tmp_path / "mlops-pipeline.yaml"
    shutil.copy(REPO / "decks" / "mlops-pipeline.yaml", deck)
    editor = tmp_path / "editor.py"
    editor.write_text(EDITOR_SCRIPT, encoding="utf-8")
    env = {
        **os.environ,
        "GRADER_HOME": str(grader_home),
        "EDITOR": f"{sys.executable} {editor}",
        "VISUAL": f"{sys.executable} {editor}",
        "COLUMNS": "100",
        "TERM": "dumb",
    }
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        env.pop(name, None)
    expand = pexpect.run(
        f"{GRADER} expand {deck} -n 3 --strategy cloze", env=env, timeout=60, withexitstatus=True
    )
    assert expand[1] == 0, expand[0]
    ids = [p.id for p in load_proposals(deck).proposals]

    child = pexpect.spawn(
        str(GRADER),
        ["review", str(deck), "--reviewer", "ada"],
        env=env,
        timeout=60,
        encoding="utf-8",
        dimensions=(40, 100),
    )
    try:
        child.expect(f"proposal {ids[0]} \\(1/3\\)")
        child.expect(PROMPT)
        child.sendline("a")
        child.expect(f"{ids[0]}: approved as card (c[0-9a-f]+)")
        first_card = child.match.group(1)

        child.expect(f"proposal {ids[1]} \\(2/3\\)")
        child.expect(PROMPT)
        child.sendline("e")
        child.expect("edited and re-checked:")
        child.expect("Which CRISP-DM step defines the success criteria")
        child.expect(PROMPT)
        child.sendline("a")
        child.expect(f"{ids[1]}: approved as card (c[0-9a-f]+)")
        second_card = child.match.group(1)

        child.expect(f"proposal {ids[2]} \\(3/3\\)")
        child.expect(PROMPT)
        child.sendline("r")
        child.expect("reason \\(optional\\) > ")
        child.sendline("too trivial")
        child.expect(f"{ids[2]}: rejected")
        child.expect("review done: approved 2, rejected 1, edited 1")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0

    cards = {c.id: c for c in load_deck(deck).deck.cards}
    assert cards[second_card].question == "Which CRISP-DM step defines the success criteria?"
    assert cards[second_card].answer == "Business understanding"
    provenance = cards[first_card].provenance
    assert provenance is not None and provenance.approved_by == "ada"
    store = load_proposals(deck)
    assert [p.status for p in store.proposals] == ["approved", "approved", "rejected"]
    assert store.proposals[2].reject_reason == "too trivial"
    assert check_deck(deck)[1] == []
