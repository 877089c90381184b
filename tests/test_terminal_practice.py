"""The real program in a real terminal (pexpect): a person's session, interruptions, kills.

Most tests run `grader` through a small launcher that swaps in a keyword grader (answers with
"good" score 0.9, with "half" 0.5, with "slow" hang, else 0.1) so what the screen shows is
predictable; the last one runs the installed `grader` with the real offline grader.
"""

from __future__ import annotations

import io
import re
import shutil
import signal
import sqlite3
import sys
from pathlib import Path

import pexpect
import pytest

from grader.history import Attempt, History

pytestmark = pytest.mark.terminal

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
SEED_DECK = REPO / "decks" / "mlops-pipeline.yaml"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")

LAUNCHER = f"""
import sys, time
sys.path.insert(0, {str(TESTS)!r})
from fakes import FakeGrader, make_grade
import grader.cli.practice as practice_cli

class KeywordGrader(FakeGrader):
    def grade(self, card, answer):
        self.calls.append((card.id, answer))
        if "slow" in answer:
            time.sleep(60)
        score = 0.9 if "good" in answer else 0.5 if "half" in answer else 0.1
        return make_grade(score, points=["first point"], feedback="Scripted feedback.")

practice_cli.build_grader = lambda *args: KeywordGrader()
from grader.cli import main
sys.argv[0] = "grader"
main()
"""


@pytest.fixture
def deck(tmp_path: Path) -> Path:
    copy = tmp_path / "mlops-pipeline.yaml"
    shutil.copyfile(SEED_DECK, copy)
    return copy


class Screen:
    """A spawned program plus everything it printed, with terminal escapes removed."""

    def __init__(self, args: list[str], home: Path, tmp_path: Path) -> None:
        self.log = io.StringIO()
        env = {
            "GRADER_HOME": str(home),
            "PATH": "/usr/bin:/bin",
            "TERM": "xterm-256color",
            "HOME": str(tmp_path),
            "HF_HUB_OFFLINE": "1",
        }
        self.child = pexpect.spawn(
            args[0],
            args[1:],
            env=env,
            cwd=str(tmp_path),
            encoding="utf-8",
            timeout=30,
            dimensions=(40, 160),
            # A runner started in the background (`cmd &` in a script, nohup) ignores SIGINT, and
            # so would the program, hanging the Ctrl-C test: give it a terminal user's default.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        self.child.logfile_read = self.log

    def expect(self, text: str) -> None:
        self.child.expect_exact(text)

    def answer(self, *lines: str) -> None:
        self.child.expect_exact("> ")
        for line in lines:
            self.child.send(line + "\r")
        self.child.send("\r")

    @property
    def text(self) -> str:
        return ANSI.sub("", self.log.getvalue())

    def finish(self) -> int:
        self.child.expect(pexpect.EOF)
        self.child.close()
        return int(self.child.exitstatus if self.child.exitstatus is not None else -1)


def scripted(deck: Path, home: Path, tmp_path: Path, *extra: str) -> Screen:
    launcher = tmp_path / "launch_grader.py"
    launcher.write_text(LAUNCHER, encoding="utf-8")
    return Screen([sys.executable, str(launcher), "practice", str(deck), *extra], home, tmp_path)


def saved(home: Path) -> list[Attempt]:
    db = sqlite3.connect(home / "history.db")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    with History.open(home) as history:
        return history.attempts()


def test_a_person_answers_overrides_and_quits(
    deck: Path, grader_home: Path, tmp_path: Path
) -> None:
    screen = scripted(deck, grader_home, tmp_path, "--new", "3")
    screen.expect("What does MLOps stand for?")
    screen.answer("teams ship good models", "and keep them running")
    screen.expect("→ Good (from correct)")
    screen.child.send("w")  # one keystroke, no Enter: "I was wrong"
    screen.expect("Saved: Again (override: wrong); next review in 1 min.")
    screen.expect("What is the real ML life cycle in MLOps?")
    screen.answer("half of it: data, train, deploy")
    screen.expect("→ Hard (from partial)")
    screen.child.send("\r")  # Enter accepts
    screen.expect("Saved: Hard; next review")
    screen.expect("Why do we need MLOps?")
    screen.child.expect_exact("> ")
    screen.child.send("q\r")
    assert screen.finish() == 0

    text = screen.text
    assert "3 card(s): 0 due, 3 new." in text
    assert "CORRECT  score 0.90" in text and "PARTIAL  score 0.50" in text
    assert "✓ first point" in text and "Scripted feedback." in text
    assert "Reference answer:" in text
    assert "The way teams build, deploy, monitor and update machine-learning models" in text
    assert "MLOps encompasses everything around the training" in text  # the footnote
    assert "Session over: 2 answer(s) saved." in text
    assert "Traceback" not in text

    first, second = saved(grader_home)
    assert first.answer == "teams ship good models\nand keep them running"
    assert (first.verdict, first.proposed_rating, first.override, first.rating) == (
        "correct",
        "good",
        "wrong",
        "again",
    )
    assert first.state_after is not None and first.state_after.phase == "learning"
    assert (second.verdict, second.override, second.rating) == ("partial", None, "hard")
    assert first.deck == "MLOps pipeline" and first.deck_path == str(deck)


def test_killed_after_grading_keeps_exactly_that_attempt(
    deck: Path, grader_home: Path, tmp_path: Path
) -> None:
    screen = scripted(deck, grader_home, tmp_path)
    screen.expect("What does MLOps stand for?")
    screen.answer("good answer")
    screen.expect("→ Good (from correct)")
    screen.child.kill(signal.SIGKILL)
    screen.child.close(force=True)
    (attempt,) = saved(grader_home)
    assert (attempt.card_id, attempt.answer, attempt.rating) == (
        "c9fbd50dc6e",
        "good answer",
        "good",
    )
    assert attempt.grade.feedback == "Scripted feedback."
    assert attempt.state_before is None and attempt.state_after is not None


def test_terminal_closed_while_grading_records_nothing_half_written(
    deck: Path, grader_home: Path, tmp_path: Path
) -> None:
    screen = scripted(deck, grader_home, tmp_path)
    screen.expect("What does MLOps stand for?")
    screen.answer("good one")
    screen.expect("→ Good")
    screen.child.send("e")
    screen.expect("Saved: Easy (override: easy)")
    screen.answer("slow answer")
    screen.expect("Grading")
    screen.child.kill(signal.SIGHUP)  # what a closed terminal sends
    screen.child.close(force=True)
    (attempt,) = saved(grader_home)
    assert (attempt.answer, attempt.override, attempt.rating) == ("good one", "easy", "easy")


def test_ctrl_c_exits_130_and_keeps_saved_attempts(
    deck: Path, grader_home: Path, tmp_path: Path
) -> None:
    screen = scripted(deck, grader_home, tmp_path)
    screen.answer("good")
    screen.expect("→ Good")
    screen.child.send("\r")
    screen.expect("Saved: Good")
    screen.child.expect_exact("> ")
    screen.child.sendintr()
    screen.expect("error: interrupted")
    assert screen.finish() == 130
    assert len(saved(grader_home)) == 1


def _offline_grader_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("grader.graders.offline") is not None


@pytest.mark.skipif(not _offline_grader_available(), reason="offline grader not built yet")
def test_quickstart_session_with_the_real_offline_grader(
    deck: Path, grader_home: Path, tmp_path: Path
) -> None:
    program = Path(sys.executable).parent / "grader"
    screen = Screen([str(program), "practice", str(deck)], grader_home, tmp_path)
    screen.expect("What does MLOps stand for?")
    screen.answer(
        "The way teams build, deploy, monitor and update machine-learning models in real life"
    )
    screen.child.expect(r"→ (Good|Hard|Again) \(from (correct|partial|incorrect)\)")
    screen.child.send("e")
    screen.expect("Saved: Easy (override: easy)")
    screen.child.expect_exact("> ")
    screen.child.sendeof()
    assert screen.finish() == 0
    assert "grading offline" in screen.text
    (attempt,) = saved(grader_home)
    assert attempt.grade.evidence.grader == "offline"
    assert attempt.verdict == "correct"
    assert (attempt.override, attempt.rating) == ("easy", "easy")
