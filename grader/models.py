"""Domain models shared by every part of grader: cards, decks, grades, proposals, eval records.

Stored records live here. LLM response models (whose field descriptions instruct the model) live
next to the adapter that uses them, so the wording the model sees never leaks into storage.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator, model_validator

Verdict = Literal["correct", "partial", "incorrect", "ungraded"]
PointStatus = Literal["hit", "partial", "missed"]
GraderKind = Literal["offline", "llm", "fake"]
RubricSource = Literal["heuristic", "llm", "author"]

CORRECT_AT = 0.8
"""Scores at or above this are `correct`."""
PARTIAL_AT = 0.35
"""Scores at or above this (and below CORRECT_AT) are `partial`; below it, `incorrect`."""


def verdict_for_score(score: float) -> Verdict:
    """The verdict a graded score implies; the single definition every grader uses."""
    if score >= CORRECT_AT:
        return "correct"
    if score >= PARTIAL_AT:
        return "partial"
    return "incorrect"


def new_card_id() -> str:
    """A fresh random card id; never derived from the card's text, so edits keep history."""
    return "c" + secrets.token_hex(5)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Provenance(Strict):
    """Where a card came from."""

    kind: Literal["imported", "proposed", "manual"]
    """`imported` from a file, `proposed` by the expander and approved, or written `manual`ly."""
    source: str | None = None
    """Imported: the source file and position (e.g. `seeds/x.txt:12`)."""
    format: str | None = None
    """Imported: the importer format used."""
    created_at: str | None = None
    """ISO-8601 time the card entered the deck."""
    strategy: str | None = None
    """Proposed: the strategy (`llm`, `reverse`, `list-item`, `cloze`)."""
    model: str | None = None
    """Proposed by an LLM: the model name."""
    prompt_hash: str | None = None
    """Proposed by an LLM: hash of the prompt template."""
    proposal_id: str | None = None
    """Proposed: the id of the proposal this card was approved from."""
    approved_by: str | None = None
    """Proposed: who approved it."""
    approved_at: str | None = None
    """Proposed: ISO-8601 time of approval."""


class Card(Strict):
    """One flashcard."""

    id: str
    """Stable id, unique within its deck, never derived from the text."""
    question: str
    """The prompt shown to the learner (Markdown)."""
    answer: str
    """Reference answer (Markdown; may be a bulleted list, one `- item` per line)."""
    footnote: str | None = None
    """Optional explanation shown after grading."""
    tags: list[str] = Field(default_factory=list)
    """Free tags for filtering."""
    rubric: list[str] = Field(default_factory=list)
    """Key points a full answer covers; empty means 'derive heuristically when grading'."""
    rubric_source: RubricSource | None = None
    """Who wrote the stored rubric."""
    rubric_answer: str | None = None
    """`fingerprint` of the answer the stored rubric was made from (set by `grader rubric`)."""
    rubric_fingerprint: str | None = None
    """`fingerprint` of the stored rubric's points as `grader rubric` wrote them."""
    provenance: Provenance | None = None
    """Where the card came from."""

    def rubric_is_stale(self) -> bool:
        """True when the answer changed after `grader rubric` made the stored rubric and the
        rubric was left as it was; a rubric edited since (by hand) is the author's, never stale."""
        if not self.rubric or self.rubric_answer is None:
            return False
        untouched = self.rubric_fingerprint in (None, fingerprint("\n".join(self.rubric)))
        return untouched and self.rubric_answer != fingerprint(self.answer)

    @field_validator("id")
    @classmethod
    def _id_is_token(cls, value: str) -> str:
        if not value or any(ch.isspace() for ch in value):
            raise ValueError("card id must be a non-empty token without spaces")
        return value

    @field_validator("question", "answer")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class Deck(Strict):
    """A deck: one file under `decks/`."""

    name: str
    """Human title."""
    description: str | None = None
    """Optional description."""
    cards: list[Card] = Field(default_factory=list)
    """Cards in file order."""

    def card(self, card_id: str) -> Card | None:
        return next((c for c in self.cards if c.id == card_id), None)


class Usage(Strict):
    """Token usage of one LLM call (or a sum of them)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class PointResult(Strict):
    """One rubric key point and how the answer covered it."""

    point: str
    """The key point as written in the rubric."""
    status: PointStatus
    """hit, partial or missed."""
    evidence: str | None = None
    """Short quote or reason supporting the status."""


class GradeEvidence(Strict):
    """What produced a grade, so results can be audited and compared."""

    grader: GraderKind
    """Which grader produced it."""
    model: str | None = None
    """Model name (LLM) or embedding model (offline)."""
    base_url: str | None = None
    """Endpoint used by the LLM grader."""
    prompt_hash: str | None = None
    """SHA-256 prefix of the prompt template (LLM) or calibration (offline)."""
    usage: Usage = Field(default_factory=Usage)
    """Token usage across all attempts."""
    latency_ms: float = 0.0
    """Wall time spent grading, in milliseconds, leaving out waits for a connection slot."""
    cached: bool = False
    """True when the answer came from the request cache."""
    attempts: int = 1
    """Number of model calls made (re-asks included)."""


class Grade(Strict):
    """A structured grade of one answer against one card's rubric."""

    score: float | None = Field(default=None, ge=0.0, le=1.0)
    """Score in [0, 1]; None only when ungraded."""
    verdict: Verdict
    """correct / partial / incorrect, or ungraded when the grader failed."""
    key_points: list[PointResult] = Field(default_factory=list)
    """Each rubric point marked hit / partial / missed."""
    misconceptions: list[str] = Field(default_factory=list)
    """Wrong claims found in the answer."""
    feedback: str = ""
    """One to three sentences addressed to the learner."""
    reason: str | None = None
    """Why the grade is ungraded (the failure), when it is."""
    evidence: GradeEvidence
    """What produced the grade."""

    @model_validator(mode="after")
    def _verdict_matches_score(self) -> Grade:
        if self.verdict == "ungraded":
            if self.score is not None:
                raise ValueError("an ungraded grade carries no score")
            if not self.reason:
                raise ValueError("an ungraded grade must give its reason")
            return self
        if self.score is None:
            raise ValueError(f"verdict {self.verdict!r} needs a score")
        expected = verdict_for_score(self.score)
        if expected != self.verdict:
            raise ValueError(
                f"verdict {self.verdict!r} disagrees with score {self.score:.2f} "
                f"(which means {expected!r})"
            )
        return self

    @property
    def graded(self) -> bool:
        return self.verdict != "ungraded"

    @property
    def points_hit(self) -> list[str]:
        return [p.point for p in self.key_points if p.status == "hit"]

    @property
    def points_missed(self) -> list[str]:
        return [p.point for p in self.key_points if p.status != "hit"]

    @classmethod
    def ungraded(cls, reason: str, evidence: GradeEvidence) -> Grade:
        return cls(verdict="ungraded", score=None, reason=reason, evidence=evidence)


class ProposalCheck(Strict):
    """The outcome of one automatic check on a proposal."""

    name: str
    """Check name (e.g. `duplicate`, `leak`, `length`, `answerable`, `schema`)."""
    outcome: Literal["pass", "flag", "reject"]
    """pass, flag (shown to the reviewer) or reject (dropped)."""
    reason: str = ""
    """Why, for flag and reject."""


class CardProposal(Strict):
    """A candidate card awaiting review; never part of a deck until approved."""

    id: str
    """Proposal id, unique within the proposals file."""
    question: str
    answer: str
    footnote: str | None = None
    tags: list[str] = Field(default_factory=list)
    builds_on: list[str] = Field(default_factory=list)
    """Ids of the deck cards this proposal is grounded in."""
    rationale: str = ""
    """One line: why this card is worth adding."""
    strategy: str
    """`llm`, `reverse`, `list-item` or `cloze`."""
    model: str | None = None
    prompt_hash: str | None = None
    created_at: str
    """ISO-8601 time proposed."""
    status: Literal["pending", "approved", "rejected"] = "pending"
    checks: list[ProposalCheck] = Field(default_factory=list)
    reject_reason: str | None = None
    reviewed_by: str | None = None
    reviewed_at: str | None = None
    card_id: str | None = None
    """The deck card created on approval."""


class EvalRecord(BaseModel):
    """One recorded learner response with its human grade (extra fields are kept, ignored)."""

    model_config = ConfigDict(extra="allow")

    question: str
    reference_answer: str
    student_answer: str
    score: float = Field(strict=True, allow_inf_nan=False)
    """Human grade on its native scale (a finite number: `true`, `"3"`, `NaN` are refused)."""
    score_max: float = Field(gt=0, strict=True, allow_inf_nan=False)
    id: str | StrictInt | None = None
    """Kept as given, a string or an integer (`--out` writes it back the same way)."""
    footnote: str | None = None
    label: str | None = None
    rubric: list[str] | None = None
    split: str | None = None
    kind: str | None = None

    @model_validator(mode="after")
    def _score_within_scale(self) -> EvalRecord:
        if not 0 <= self.score <= self.score_max:
            raise ValueError(
                f"score {self.score:g} is outside 0..score_max ({self.score_max:g}); "
                "a wrong score_max would skew every metric"
            )
        return self

    @property
    def gold(self) -> float:
        """Human grade normalised to [0, 1]."""
        return self.score / self.score_max


def fingerprint(text: str) -> str:
    """A short hash (first 12 hex of the SHA-256) of an answer or a rubric, stored with it."""
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def utc_now_iso(now: datetime | None = None) -> str:
    from datetime import UTC

    return (now or datetime.now(UTC)).replace(microsecond=0).isoformat()
