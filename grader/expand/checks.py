"""Automatic checks a proposal passes before a person sees it.

Each check gives pass, flag (kept, shown to the reviewer with its reason) or reject (dropped and
counted). Checks: `schema` (the card validates as a deck card), `length` (empty or overlong fields),
`leak` (the answer is given away by the question), `answerable` (the reference answer addresses
the question), `duplicate` (embedding similarity to the deck's cards, to proposals already on file,
to previously rejected proposals and to the rest of the batch).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import ValidationError

from grader.expand.proposals import normalise
from grader.models import Card, CardProposal, Deck, ProposalCheck, Strict
from grader.rubric import list_items, plain

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

Outcome = Literal["pass", "flag", "reject"]
CHECK_NAMES = ("schema", "length", "leak", "answerable", "duplicate")


class Encoder(Protocol):
    """Anything that embeds texts as L2-normalised rows (grader.embedding.SentenceEncoder)."""

    def encode(self, texts: Sequence[str]) -> NDArray[np.float32]: ...


class CheckLimits(Strict):
    """Thresholds of the checks (similarities are cosine similarities of question embeddings)."""

    question_flag_chars: int = 500
    """A question longer than this is flagged as overlong."""
    question_reject_chars: int = 2000
    answer_flag_chars: int = 600
    answer_reject_chars: int = 2500
    footnote_flag_chars: int = 800
    footnote_reject_chars: int = 3000
    duplicate_reject: float = 0.88
    """Pair similarity (mean of question and answer similarity) at which a proposal is dropped."""
    duplicate_flag: float = 0.75
    """Pair similarity at which a proposal is flagged as close to another card or proposal."""
    answerable_flag: float = 0.15
    """Question-to-answer similarity below which the answer seems not to address the question."""
    leak_word_share: float = 0.8
    """Share of the answer's content words found in the question that flags a leak."""


@dataclass
class Prior:
    """What is already known when checking: the deck and proposals already on file."""

    deck: Deck
    proposals: Sequence[CardProposal] = ()


@dataclass
class CheckSummary:
    """Counts for the end-of-run summary."""

    passed: int = 0
    flagged: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)
    """Rejections per check name."""


def outcome(proposal: CardProposal) -> Outcome:
    """The overall outcome: the worst of its checks."""
    names = {c.outcome for c in proposal.checks}
    if "reject" in names:
        return "reject"
    return "flag" if "flag" in names else "pass"


_CHOICE = re.compile(r"\b(?:or|either|which of|choose|true or false)\b", re.IGNORECASE)
_BOOLEAN_ANSWERS = frozenset({"true", "false", "yes", "no"})
_STOP = frozenset(
    """a an and are as at be by for from in into is it of on or that the their this to was were
    what which who why how with""".split()  # noqa: SIM905
)
_MIN_JUDGED_ANSWER_WORDS = 4
_NUMBERS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}
_COUNTED = re.compile(r"\b(two|three|four|five|six|seven|eight)\s+(?:\w+\s+)?\w+", re.IGNORECASE)


def _content_words(text: str) -> list[str]:
    return [w for w in normalise(text).split() if len(w) > 2 and w not in _STOP]


def check_schema(proposal: CardProposal, deck: Deck) -> list[ProposalCheck]:
    """The same validation a deck card gets, plus grounding ids that exist in the deck."""
    try:
        Card(
            id="proposal",
            question=proposal.question,
            answer=proposal.answer,
            footnote=proposal.footnote,
            tags=proposal.tags,
        )
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        return [ProposalCheck(name="schema", outcome="reject", reason=f"{where}: {error['msg']}")]
    bad_tags = [t for t in proposal.tags if not t.strip() or any(ch.isspace() for ch in t)]
    if bad_tags:
        return [ProposalCheck(name="schema", outcome="flag", reason=f"odd tags: {bad_tags}")]
    unknown = [i for i in proposal.builds_on if deck.card(i) is None]
    if unknown:
        reason = f"builds on card ids not in the deck: {', '.join(unknown)}"
        return [ProposalCheck(name="schema", outcome="flag", reason=reason)]
    return []


def check_length(proposal: CardProposal, limits: CheckLimits) -> list[ProposalCheck]:
    """Empty or overlong fields."""
    out: list[ProposalCheck] = []
    fields = (
        ("question", proposal.question, limits.question_flag_chars, limits.question_reject_chars),
        ("answer", proposal.answer, limits.answer_flag_chars, limits.answer_reject_chars),
        ("footnote", proposal.footnote, limits.footnote_flag_chars, limits.footnote_reject_chars),
    )
    for name, value, flag_at, reject_at in fields:
        if value is None:
            continue
        size = len(value.strip())
        if size == 0 and name != "footnote":
            out.append(ProposalCheck(name="length", outcome="reject", reason=f"{name} is empty"))
        elif size > reject_at:
            reason = f"{name} is {size} characters (limit {reject_at})"
            out.append(ProposalCheck(name="length", outcome="reject", reason=reason))
        elif size > flag_at:
            reason = f"{name} is long: {size} characters"
            out.append(ProposalCheck(name="length", outcome="flag", reason=reason))
    return out


def check_leak(proposal: CardProposal, limits: CheckLimits) -> list[ProposalCheck]:
    """The answer given away by the question: verbatim, item by item, or most of its words."""
    question = f" {normalise(proposal.question)} "
    answer = normalise(proposal.answer)
    if not answer or answer in _BOOLEAN_ANSWERS:
        return []
    offers_choice = bool(_CHOICE.search(proposal.question))
    items = [normalise(item) for item in list_items(proposal.answer)]
    if len(items) >= 2:
        shown = [item for item in items if item and f" {item} " in question]
        if len(shown) * 2 >= len(items):
            reason = f"{len(shown)} of {len(items)} answer items appear in the question"
            return [ProposalCheck(name="leak", outcome="reject", reason=reason)]
        if shown:
            reason = f"answer item in the question: {shown[0]!r}"
            return [ProposalCheck(name="leak", outcome="flag", reason=reason)]
        return []
    if f" {answer} " in question:
        if offers_choice:
            reason = "the answer is one of the options the question offers"
            return [ProposalCheck(name="leak", outcome="flag", reason=reason)]
        return [
            ProposalCheck(name="leak", outcome="reject", reason="the question contains the answer")
        ]
    words = _content_words(proposal.answer)
    if len(words) >= 3:
        present = [w for w in words if f" {w} " in question]
        share = len(present) / len(words)
        if share >= limits.leak_word_share:
            reason = f"{share:.0%} of the answer's words appear in the question"
            return [ProposalCheck(name="leak", outcome="flag", reason=reason)]
    return []


def check_count(proposal: CardProposal) -> list[ProposalCheck]:
    """A question asking for "three X" whose list answer has a different number of items."""
    match = _COUNTED.search(plain(proposal.question))
    items = list_items(proposal.answer)
    if match is None or not items:
        return []
    wanted = _NUMBERS[match.group(1).lower()]
    if wanted == len(items):
        return []
    reason = f"the question asks for {wanted} but the answer lists {len(items)}"
    return [ProposalCheck(name="answerable", outcome="flag", reason=reason)]


def _answer_text(proposal: CardProposal) -> str:
    return plain(f"{proposal.answer} {proposal.footnote or ''}")


@dataclass
class _Embedded:
    """Question and answer embeddings of a list of cards or proposals."""

    items: Sequence[Card | CardProposal]
    questions: NDArray[np.float32]
    answers: NDArray[np.float32]

    def similarity(self, question: NDArray[np.float32], answer: NDArray[np.float32]) -> Any:
        """Pair similarity: the mean of question-question and answer-answer cosine similarity.

        Measured on the seed decks (docs/expand-review.md), this separates reworded cards from
        distinct ones better than the question alone (distinct questions on one topic, such as
        "What is Level 0 / Level 1 in MLOps maturity?", reach 0.9 on the question alone).
        """
        return (self.questions @ question + self.answers @ answer) / 2


def run_checks(
    candidates: Sequence[CardProposal],
    prior: Prior,
    encoder: Encoder,
    limits: CheckLimits | None = None,
) -> list[CardProposal]:
    """Every candidate with its non-pass checks attached, in input order.

    Duplicates are judged in order: a candidate is compared with the deck, with proposals on file
    (pending, approved or rejected) and with the earlier candidates that were not rejected.
    """
    limits = limits or CheckLimits()
    checked = [
        c.model_copy(
            update={
                "checks": [
                    *check_schema(c, prior.deck),
                    *check_length(c, limits),
                    *check_leak(c, limits),
                    *check_count(c),
                ]
            }
        )
        for c in candidates
    ]
    alive = [checked[i] for i, c in enumerate(checked) if outcome(c) != "reject"]
    if not alive:
        return checked

    cards: list[Card | CardProposal] = list(prior.deck.cards)
    on_file: list[Card | CardProposal] = list(prior.proposals)
    groups: list[list[Card | CardProposal]] = [list(alive), cards, on_file]
    texts = [plain(item.question) for group in groups for item in group]
    texts += [plain(item.answer) for group in groups for item in group]
    texts += [_answer_text(c) for c in alive]
    vectors = encoder.encode(texts)
    total = sum(len(g) for g in groups)
    embedded: list[_Embedded] = []
    offset = 0
    for group in groups:
        rows = slice(offset, offset + len(group))
        embedded.append(_Embedded(group, vectors[:total][rows], vectors[total : 2 * total][rows]))
        offset += len(group)
    batch, deck_side, file_side = embedded
    full_answers = vectors[2 * total :]

    by_text: dict[str, Card | CardProposal] = {normalise(p.question): p for p in on_file}
    by_text.update({normalise(c.question): c for c in cards})
    kept: list[int] = []
    results: dict[str, CardProposal] = {}
    for row, candidate in enumerate(alive):
        found: list[ProposalCheck] = []
        answer_similarity = float(batch.questions[row] @ full_answers[row])
        # A bare term ("A container") embeds far from any question; only judge real answers.
        judged = len(_answer_text(candidate).split()) >= _MIN_JUDGED_ANSWER_WORDS
        if judged and answer_similarity < limits.answerable_flag:
            reason = f"the answer may not address the question (similarity {answer_similarity:.2f})"
            found.append(ProposalCheck(name="answerable", outcome="flag", reason=reason))
        earlier = _Embedded([alive[k] for k in kept], batch.questions[kept], batch.answers[kept])
        found.extend(
            _duplicate(
                candidate,
                (batch.questions[row], batch.answers[row]),
                [(deck_side, ""), (file_side, ""), (earlier, " in this batch")],
                by_text,
                limits,
            )
        )
        done = candidate.model_copy(update={"checks": [*candidate.checks, *found]})
        results[candidate.id] = done
        if outcome(done) != "reject":
            kept.append(row)
    return [results.get(c.id, c) for c in checked]


def _duplicate(
    candidate: CardProposal,
    vectors: tuple[NDArray[np.float32], NDArray[np.float32]],
    sides: Sequence[tuple[_Embedded, str]],
    by_text: dict[str, Card | CardProposal],
    limits: CheckLimits,
) -> list[ProposalCheck]:
    exact = by_text.get(normalise(candidate.question))
    if exact is not None and normalise(exact.answer) == normalise(candidate.answer):
        return [ProposalCheck(name="duplicate", outcome="reject", reason=_describe(exact, 1.0))]
    best: tuple[float, Card | CardProposal, str] | None = None
    for side, where in sides:
        if not len(side.items):
            continue
        similarities = side.similarity(*vectors)
        top = int(similarities.argmax())
        score = float(similarities[top])
        if best is None or score > best[0]:
            best = (score, side.items[top], where)
    if best is None:
        return []
    score, other, where = best
    if score >= limits.duplicate_reject:
        reason = _describe(other, score) + where
        return [ProposalCheck(name="duplicate", outcome="reject", reason=reason)]
    if score >= limits.duplicate_flag:
        reason = f"close to {_label(other)} (similarity {score:.2f}){where}"
        return [ProposalCheck(name="duplicate", outcome="flag", reason=reason)]
    if exact is not None:
        reason = f"same question as {_label(exact)}, different answer"
        return [ProposalCheck(name="duplicate", outcome="flag", reason=reason)]
    return []


def _label(other: Card | CardProposal) -> str:
    if isinstance(other, Card):
        return f"card {other.id}"
    if other.status == "rejected":
        why = f": {other.reject_reason}" if other.reject_reason else ""
        return f"previously rejected proposal {other.id}{why}"
    return f"{other.status} proposal {other.id}"


def _describe(other: Card | CardProposal, score: float) -> str:
    if isinstance(other, CardProposal) and other.status == "rejected":
        return f"same as {_label(other)} (similarity {score:.2f})"
    return f"duplicate of {_label(other)} (similarity {score:.2f})"


def summarise(checked: Sequence[CardProposal]) -> CheckSummary:
    """Counts of pass / flag / reject, and rejections per check."""
    summary = CheckSummary()
    for proposal in checked:
        result = outcome(proposal)
        if result == "reject":
            summary.rejected += 1
            summary.reasons.update({c.name for c in proposal.checks if c.outcome == "reject"})
        elif result == "flag":
            summary.flagged += 1
        else:
            summary.passed += 1
    return summary
