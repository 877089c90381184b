"""Practice history: every attempt and each card's FSRS state, in SQLite under GRADER_HOME.

Decks hold no scheduling state; it lives here, keyed by (deck name, card id), so a card edited in
its deck keeps its history. Each write is one `BEGIN IMMEDIATE` transaction that re-reads the
card's latest state before scheduling from it, so two sessions on one deck never overwrite each
other's reviews; WAL mode and a busy timeout let them wait for each other instead of failing.
Schema changes are ordered migrations, applied once each and recorded in `_migrations`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from pydantic import BaseModel, ConfigDict, Field

from grader.errors import GraderError
from grader.models import Grade, Verdict
from grader.scheduling import CardState, Override, RatingName, Scheduler
from grader.sqlite_wal import connect_wal

DB_NAME = "history.db"
BUSY_TIMEOUT_S = 30.0

MIGRATIONS: list[tuple[str, str]] = [
    (
        "001_attempts_and_card_state",
        """
        CREATE TABLE attempts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session_id TEXT NOT NULL,
            deck TEXT NOT NULL,
            deck_path TEXT,
            card_id TEXT NOT NULL,
            question TEXT NOT NULL,
            tags TEXT NOT NULL,
            answer TEXT NOT NULL,
            grade TEXT NOT NULL,
            verdict TEXT NOT NULL,
            score REAL,
            proposed_rating TEXT,
            override TEXT,
            self_rating INTEGER,
            rating TEXT,
            state_before TEXT,
            state_after TEXT,
            answered_at TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            amended_at TEXT
        );
        CREATE INDEX attempts_by_card ON attempts (deck, card_id, id);
        CREATE TABLE card_state (
            deck TEXT NOT NULL,
            card_id TEXT NOT NULL,
            state TEXT NOT NULL,
            due TEXT NOT NULL,
            last_attempt_id INTEGER NOT NULL REFERENCES attempts (id),
            PRIMARY KEY (deck, card_id)
        );
        CREATE INDEX card_state_by_due ON card_state (due);
        """,
    ),
]


def _ts(moment: datetime) -> str:
    """Fixed-width UTC text, so stored times compare correctly as strings."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class AttemptInput(BaseModel):
    """What a session knows about an attempt before it is recorded."""

    model_config = ConfigDict(extra="forbid")

    session_id: str
    """Identifies the practice session (one process run)."""
    deck: str
    """The deck's name (its `name` field): with the card id, the key of the card's history."""
    deck_path: str | None = None
    """The deck file practised from (informational)."""
    card_id: str
    question: str
    """The question as shown, kept so history reads well after the deck changes."""
    tags: list[str] = Field(default_factory=list)
    answer: str
    """The learner's answer verbatim ('' means "I don't know")."""
    grade: Grade
    answered_at: datetime
    """When the learner submitted the answer."""


class Attempt(BaseModel):
    """One recorded attempt."""

    model_config = ConfigDict(extra="forbid")

    id: int
    session_id: str
    deck: str
    deck_path: str | None
    card_id: str
    question: str
    tags: list[str]
    answer: str
    grade: Grade
    """The full grade as the grader returned it."""
    verdict: Verdict
    score: float | None
    proposed_rating: RatingName | None
    """The rating the grade mapped to (None when ungraded)."""
    override: Override | None
    """The learner's one-key override, recorded next to the original grade."""
    self_rating: int | None
    """The learner's 1-5 self-rating (asked when the grade is ungraded)."""
    rating: RatingName | None
    """The rating FSRS was given; None means the card was not rescheduled."""
    state_before: CardState | None
    """FSRS state before the review (None: a new card)."""
    state_after: CardState | None
    """FSRS state after the review (None: not rescheduled)."""
    answered_at: datetime
    recorded_at: datetime
    amended_at: datetime | None


def _state_json(state: CardState | None) -> str | None:
    return None if state is None else state.model_dump_json()


def _state(text: str | None) -> CardState | None:
    return None if text is None else CardState.model_validate_json(text)


def _attempt(row: sqlite3.Row) -> Attempt:
    return Attempt(
        id=row["id"],
        session_id=row["session_id"],
        deck=row["deck"],
        deck_path=row["deck_path"],
        card_id=row["card_id"],
        question=row["question"],
        tags=json.loads(row["tags"]),
        answer=row["answer"],
        grade=Grade.model_validate_json(row["grade"]),
        verdict=row["verdict"],
        score=row["score"],
        proposed_rating=row["proposed_rating"],
        override=row["override"],
        self_rating=row["self_rating"],
        rating=row["rating"],
        state_before=_state(row["state_before"]),
        state_after=_state(row["state_after"]),
        answered_at=_parse_ts(row["answered_at"]),
        recorded_at=_parse_ts(row["recorded_at"]),
        amended_at=_parse_ts(row["amended_at"]) if row["amended_at"] else None,
    )


class History:
    """The attempts database. Open with `History.open(home)`; use as a context manager."""

    def __init__(self, connection: sqlite3.Connection, path: Path) -> None:
        self._db = connection
        self.path = path

    @classmethod
    def open(cls, home: Path) -> History:
        """Open (creating and migrating as needed) `home/history.db`."""
        path = Path(home) / DB_NAME
        try:
            db = connect_wal(path, BUSY_TIMEOUT_S)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
            history = cls(db, path)
            history._migrate()
        except sqlite3.DatabaseError as exc:
            raise GraderError(f"{path}: cannot open the history database: {exc}") from None
        return history

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> History:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, locked up front so re-reads inside it are current."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _migrate(self) -> None:
        with self._write() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT)"
            )
            done = {row[0] for row in db.execute("SELECT name FROM _migrations")}
            for name, script in MIGRATIONS:
                if name in done:
                    continue
                for statement in script.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(
                    "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                    (name, _ts(datetime.now(UTC))),
                )

    def applied_migrations(self) -> list[str]:
        return [row[0] for row in self._db.execute("SELECT name FROM _migrations ORDER BY name")]

    # --- writes -------------------------------------------------------------------------------

    def record(
        self,
        attempt: AttemptInput,
        *,
        rating: RatingName | None,
        scheduler: Scheduler,
        now: datetime,
        override: Override | None = None,
        self_rating: int | None = None,
    ) -> Attempt:
        """Record one graded attempt and reschedule its card, atomically.

        `rating` None records the attempt without rescheduling (an ungraded answer not yet
        self-rated). The card's state is re-read inside the transaction, so a review another
        session recorded meanwhile is built upon, not overwritten.
        """
        from grader.scheduling import rating_for_verdict

        with self._write() as db:
            before = self._current_state(db, attempt.deck, attempt.card_id)
            after = scheduler.review(before, rating, now) if rating else None
            cursor = db.execute(
                """
                INSERT INTO attempts (
                    session_id, deck, deck_path, card_id, question, tags, answer, grade,
                    verdict, score, proposed_rating, override, self_rating, rating,
                    state_before, state_after, answered_at, recorded_at
                ) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                (
                    attempt.session_id,
                    attempt.deck,
                    attempt.deck_path,
                    attempt.card_id,
                    attempt.question,
                    json.dumps(attempt.tags),
                    attempt.answer,
                    attempt.grade.model_dump_json(),
                    attempt.grade.verdict,
                    attempt.grade.score,
                    rating_for_verdict(attempt.grade.verdict),
                    override,
                    self_rating,
                    rating,
                    _state_json(before),
                    _state_json(after),
                    _ts(attempt.answered_at),
                    _ts(now),
                ),
            )
            attempt_id = int(cursor.lastrowid or 0)
            if after is not None:
                self._set_state(db, attempt.deck, attempt.card_id, after, attempt_id)
            return self._get(db, attempt_id)

    def amend(
        self,
        attempt_id: int,
        *,
        rating: RatingName,
        scheduler: Scheduler,
        now: datetime,
        override: Override | None = None,
        self_rating: int | None = None,
    ) -> Attempt:
        """Change a recorded attempt's rating (an override or a late self-rating), atomically.

        The card is rescheduled from the attempt's own `state_before`, replacing the state it
        produced. If another session has reviewed the card since, that later review stands and
        only the attempt's rating fields change.
        """
        with self._write() as db:
            current = self._get(db, attempt_id)
            row = db.execute(
                "SELECT last_attempt_id FROM card_state WHERE deck = ? AND card_id = ?",
                (current.deck, current.card_id),
            ).fetchone()
            # Attempt ids grow monotonically, so a later review of this card has a larger id.
            ours = row is None or row["last_attempt_id"] <= attempt_id
            after = current.state_after
            if ours:
                after = scheduler.review(current.state_before, rating, current.recorded_at)
                self._set_state(db, current.deck, current.card_id, after, attempt_id)
            db.execute(
                """
                UPDATE attempts SET override = ?, self_rating = ?, rating = ?, state_after = ?,
                    amended_at = ?
                WHERE id = ?
                """,
                (override, self_rating, rating, _state_json(after), _ts(now), attempt_id),
            )
            return self._get(db, attempt_id)

    @staticmethod
    def _set_state(
        db: sqlite3.Connection, deck: str, card_id: str, state: CardState, attempt_id: int
    ) -> None:
        db.execute(
            """
            INSERT INTO card_state (deck, card_id, state, due, last_attempt_id)
            VALUES (?, ?, ?, ?, ?)
            ON CONFLICT (deck, card_id) DO UPDATE SET
                state = excluded.state, due = excluded.due,
                last_attempt_id = excluded.last_attempt_id
            """,
            (deck, card_id, state.model_dump_json(), _ts(state.due), attempt_id),
        )

    @staticmethod
    def _current_state(db: sqlite3.Connection, deck: str, card_id: str) -> CardState | None:
        row = db.execute(
            "SELECT state FROM card_state WHERE deck = ? AND card_id = ?", (deck, card_id)
        ).fetchone()
        return _state(row["state"]) if row else None

    @staticmethod
    def _get(db: sqlite3.Connection, attempt_id: int) -> Attempt:
        row = db.execute("SELECT * FROM attempts WHERE id = ?", (attempt_id,)).fetchone()
        if row is None:
            raise GraderError(f"no attempt with id {attempt_id}")
        return _attempt(row)

    # --- reads --------------------------------------------------------------------------------

    def card_states(self, deck: str) -> dict[str, CardState]:
        """The current FSRS state of every reviewed card of a deck, by card id."""
        rows = self._db.execute("SELECT card_id, state FROM card_state WHERE deck = ?", (deck,))
        return {row["card_id"]: CardState.model_validate_json(row["state"]) for row in rows}

    def state(self, deck: str, card_id: str) -> CardState | None:
        return self._current_state(self._db, deck, card_id)

    def attempts(
        self, *, decks: Sequence[str] | None = None, card_id: str | None = None
    ) -> list[Attempt]:
        """Attempts in recording order, optionally only those of some decks or one card."""
        query = "SELECT * FROM attempts"
        clauses: list[str] = []
        params: list[str] = []
        if decks is not None:
            if not decks:
                return []
            clauses.append(f"deck IN ({', '.join('?' for _ in decks)})")
            params.extend(decks)
        if card_id is not None:
            clauses.append("card_id = ?")
            params.append(card_id)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        return [_attempt(row) for row in self._db.execute(query + " ORDER BY id", params)]

    def deck_names(self) -> list[str]:
        """Every deck with recorded attempts."""
        return [row[0] for row in self._db.execute("SELECT DISTINCT deck FROM attempts ORDER BY 1")]
