"""A drill session without the terminal: choose questions, grade answers by question type, record every attempt.

Order: questions due for review first (most overdue first), then new ones in bank order, then the rest by due
date. Grading is routed by type — numeric → :func:`grade_numeric`, coding → ``grade_code`` on the file the user
names, everything else → ``grade_free_text`` on the rubric — with the graders imported only when first used.
Each answer is recorded as soon as it is graded; an "I knew it / I didn't" override then rewrites that attempt.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tfdojo.errors import BankError, ProgressError
from tfdojo.practice.counters import QuestionState, question_states
from tfdojo.practice.loader import Bank
from tfdojo.practice.scheduler import rating_for
from tfdojo.practice.schema import Question
from tfdojo.practice.store import Attempt, ProgressStore


@dataclass(frozen=True)
class Filters:
    """Which questions a drill asks: empty tuples match everything; ``count`` caps the number."""

    sections: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    difficulties: tuple[str, ...] = ()
    due: bool = False
    grill: bool = False
    count: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, stored with the session."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def _far_future() -> datetime:
    return datetime.max.replace(tzinfo=UTC)


def pick_questions(bank: Bank, states: dict[str, QuestionState], filters: Filters) -> list[Question]:
    """The questions to ask, due first (see the module docstring for the order)."""
    chosen = bank.filter(
        sections=filters.sections,
        types=filters.types,
        difficulties=filters.difficulties,
        grill=True if filters.grill else None,
    )

    def due_at(q: Question) -> datetime:
        return states[q.id].due_at or _far_future()

    due = sorted((q for q in chosen if states[q.id].due), key=due_at)
    if filters.due:
        ordered = due
    else:
        new = [q for q in chosen if not states[q.id].practiced]
        later = sorted((q for q in chosen if states[q.id].practiced and not states[q.id].due), key=due_at)
        ordered = due + new + later
    return ordered[: filters.count] if filters.count is not None else ordered


@dataclass(frozen=True)
class Outcome:
    """A graded answer, whichever grader produced it: verdict (correct / partial / close / incorrect / uncertain)."""

    verdict: str
    score: float
    feedback: str


def _free_text(question: Question, answer: str) -> Outcome:
    from tfdojo.practice.grading.free_text import grade_free_text

    grade = grade_free_text(question.rubric, answer)
    return Outcome(grade.verdict, grade.score, grade.feedback)


def _numeric(question: Question, answer: str) -> Outcome:
    from tfdojo.practice.grading.numeric import asked_unit, grade_numeric

    if question.numeric is None:
        raise BankError(f"question {question.id!r} is numeric but has no [numeric] table; fix the bank file")
    grade = grade_numeric(question.numeric, answer, asked_unit(question.prompt))
    return Outcome(grade.verdict, grade.score, grade.feedback)


def _code(question: Question, source: str) -> Outcome:
    from tfdojo.practice.code import grade_code

    grade = grade_code(question.id, source)
    return Outcome("correct" if grade.passed else "incorrect", 1.0 if grade.passed else 0.0, grade.feedback)


Grader = Callable[[Question, str], Outcome]


@dataclass(frozen=True)
class Graders:
    """The grader used for each kind of question (tests substitute stubs)."""

    free_text: Grader = _free_text
    numeric: Grader = _numeric
    code: Grader = _code

    def grade(self, question: Question, answer: str) -> Outcome:
        """Route by question type; for coding, ``answer`` is the submitted source."""
        if question.type == "numeric":
            return self.numeric(question, answer)
        if question.type == "coding":
            return self.code(question, answer)
        return self.free_text(question, answer)


def read_submission(path_text: str) -> str:
    """The source code in the file a coding answer names; ProgressError when it cannot be read."""
    path = Path(path_text.strip()).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ProgressError(f"cannot read your solution file {path}: {e}; give the path to a .py file") from None


def starter_copy(question: Question, work_dir: Path) -> tuple[Path, Path]:
    """The exercise's starter file and a working copy of it in ``work_dir`` (made once, never overwritten)."""
    from tfdojo.practice.code import load_exercise

    starter = load_exercise(question.id).path / "starter.py"
    copy = work_dir / f"{question.id}.py"
    if not copy.exists():
        work_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(starter, copy)
    return starter, copy


def hint_for(question: Question) -> str:
    """A nudge: the first key point of the rubric (using it makes the attempt not cold)."""
    return question.rubric.key_points[0].text


@dataclass(frozen=True)
class Submission:
    """An answer graded and recorded: the question, the stored attempt and the grader's outcome."""

    question: Question
    attempt: Attempt
    outcome: Outcome


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class DrillSession:
    """One drill: opens a session in the store, grades and records each answer, applies overrides."""

    store: ProgressStore
    filters: Filters = field(default_factory=Filters)
    graders: Graders = field(default_factory=Graders)
    clock: Callable[[], datetime] = _now
    id: int = 0

    def __post_init__(self) -> None:
        self.id = self.store.start_session(self.filters.as_dict(), self.clock())

    def questions(self, bank: Bank) -> list[Question]:
        """The questions this drill asks, given the progress so far."""
        states = question_states([q.id for q in bank], self.store.attempts(), self.store.cards(), self.clock())
        return pick_questions(bank, states, self.filters)

    def submit(self, question: Question, answer: str, seconds: float, hint_used: bool = False) -> Submission:
        """Grade an answer and record it at once; raises (recording nothing) when the answer cannot be read."""
        outcome = self.graders.grade(question, answer)
        cold = not hint_used and not self.store.tried_in_session(self.id, question.id)
        rating = rating_for(
            outcome.verdict, cold=cold, seconds=seconds, expected_seconds=question.minutes * 60, override=None
        )
        attempt = Attempt(
            question_id=question.id,
            at=self.clock(),
            answer=answer,
            verdict=outcome.verdict,
            score=outcome.score,
            rating=int(rating),
            cold=cold,
            hint_used=hint_used,
            seconds=seconds,
            session_id=self.id,
        )
        self.store.record(attempt)
        return Submission(question, attempt, outcome)

    def override(self, submission: Submission, knew: bool) -> None:
        """ "I knew it" (counts as correct) or "I didn't" (incorrect) in place of the grader's verdict."""
        a = submission.attempt
        choice = "knew" if knew else "didnt"
        rating = rating_for(
            a.verdict,
            cold=a.cold,
            seconds=a.seconds,
            expected_seconds=submission.question.minutes * 60,
            override=choice,
        )
        self.store.set_override(a.uid, choice, int(rating))

    def finish(self) -> None:
        """Close the session."""
        self.store.end_session(self.id, self.clock())
