"""What progress means, counted from the attempts and cards of the store.

* practiced — attempted at least once;
* cold — the latest cold attempt (first try at the question in a session, no hint) was right;
* mastered — the FSRS card's stability is at least 21 days (90 % recall three weeks on), or the last three
  cold attempts were all right;
* due — reviewed before and due again now (a question never attempted is new, not due);
* grill readiness — how many of the grill questions are cold ("40 of 60 cold").

"Right" is the effective verdict ``correct`` (the user's override, else the grader's); partial or close is not.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from fsrs import Card

from tfdojo.practice.scheduler import SpacedRepetition, effective_verdict
from tfdojo.practice.store import Attempt, utc

MASTERY_STABILITY_DAYS = 21.0
MASTERY_COLD_STREAK = 3
_FSRS = SpacedRepetition()


def is_right(attempt: Attempt) -> bool:
    """Whether the attempt counts as right (correct after any override)."""
    return effective_verdict(attempt.verdict, attempt.override) == "correct"


@dataclass(frozen=True)
class QuestionState:
    """One question's standing: attempts, whether it is cold / mastered / due, and the last verdict."""

    question_id: str
    attempts: int = 0
    cold: bool = False
    mastered: bool = False
    due: bool = False
    due_at: datetime | None = None
    last_verdict: str | None = None
    recall: float | None = None  # FSRS probability of recalling it now; None when never reviewed

    @property
    def practiced(self) -> bool:
        """Attempted at least once."""
        return self.attempts > 0

    @property
    def label(self) -> str:
        """The strongest state in one word: mastered, cold, practiced or new (with ", due" when due)."""
        word = "mastered" if self.mastered else "cold" if self.cold else "practiced" if self.practiced else "new"
        return word + (", due" if self.due else "")


def question_state(question_id: str, attempts: list[Attempt], card: Card | None, now: datetime) -> QuestionState:
    """The state of one question from its attempts (oldest first) and its card."""
    if not attempts:
        return QuestionState(question_id)
    cold_results = [is_right(a) for a in attempts if a.cold]
    streak = cold_results[-MASTERY_COLD_STREAK:]
    stable = card is not None and (card.stability or 0.0) >= MASTERY_STABILITY_DAYS
    due_at = utc(card.due) if card is not None else None
    return QuestionState(
        question_id,
        attempts=len(attempts),
        cold=bool(cold_results) and cold_results[-1],
        mastered=stable or (len(streak) == MASTERY_COLD_STREAK and all(streak)),
        due=due_at is not None and due_at <= utc(now),
        due_at=due_at,
        last_verdict=effective_verdict(attempts[-1].verdict, attempts[-1].override),
        recall=_FSRS.recall(card, utc(now)) if card is not None else None,
    )


def question_states(
    question_ids: Iterable[str], attempts: Iterable[Attempt], cards: Mapping[str, Card], now: datetime
) -> dict[str, QuestionState]:
    """The state of each question in ``question_ids`` (attempts at other questions are ignored)."""
    by_question: dict[str, list[Attempt]] = defaultdict(list)
    for a in sorted(attempts, key=lambda a: utc(a.at)):
        by_question[a.question_id].append(a)
    return {q: question_state(q, by_question.get(q, []), cards.get(q), now) for q in question_ids}


@dataclass(frozen=True)
class Counters:
    """The headline numbers over a set of questions, and the grill among them."""

    questions: int
    practiced: int
    cold: int
    mastered: int
    due: int
    grill: int
    grill_cold: int

    @property
    def grill_readiness(self) -> str:
        """ "40 of 60 cold": how many grill questions you can answer cold."""
        return f"{self.grill_cold} of {self.grill} cold"


def count(states: Mapping[str, QuestionState], grill_ids: Iterable[str]) -> Counters:
    """Counters over the given question states (``grill_ids`` among them)."""
    values = list(states.values())
    grill = [states[q] for q in grill_ids if q in states]
    return Counters(
        questions=len(values),
        practiced=sum(s.practiced for s in values),
        cold=sum(s.cold for s in values),
        mastered=sum(s.mastered for s in values),
        due=sum(s.due for s in values),
        grill=len(grill),
        grill_cold=sum(s.cold for s in grill),
    )


@dataclass(frozen=True)
class Day:
    """One day of practice: attempts made and how many were right."""

    day: date
    attempts: int
    right: int


def daily_history(attempts: Iterable[Attempt]) -> list[Day]:
    """Attempts per (UTC) day, oldest first."""
    made: Counter[date] = Counter()
    right: Counter[date] = Counter()
    for a in attempts:
        day = utc(a.at).date()
        made[day] += 1
        right[day] += is_right(a)
    return [Day(d, made[d], right[d]) for d in sorted(made)]
