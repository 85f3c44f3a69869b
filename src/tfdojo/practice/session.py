"""A drill session without the terminal: choose questions, grade answers by question type, record every attempt.

Order: questions due for review first (most overdue first), then new ones in bank order, then the rest by due
date; or, with ``order="weakest"``, the practiced questions by their FSRS chance of recall (lowest first), then new
ones. Grading is routed by type — numeric → :func:`grade_numeric`, coding → ``grade_code`` on the file the user
names, everything else → ``grade_free_text`` on the rubric — with the graders imported only when first used.
Each answer is recorded as soon as it is graded; an "I knew it / I didn't" override then rewrites that attempt.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tfdojo.errors import AnswerParseError, BankError, ProgressError
from tfdojo.practice.counters import QuestionState, question_states
from tfdojo.practice.loader import Bank
from tfdojo.practice.scheduler import rating_for
from tfdojo.practice.schema import Question
from tfdojo.practice.store import Attempt, ProgressStore

MAX_ANSWER_CHARS = 5_000  # about 800 words, more than five minutes spoken; grading time grows with length
MAX_SOURCE_CHARS = 100_000  # a coding answer is one file


@dataclass(frozen=True)
class Filters:
    """Which questions a drill asks: empty tuples match everything; ``count`` caps the number.

    ``ids`` asks exactly those questions, in that order. ``order`` is "due" (due first, then new, then the rest)
    or "weakest" (lowest chance of recall first, then new ones).
    """

    sections: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    difficulties: tuple[str, ...] = ()
    due: bool = False
    grill: bool = False
    count: int | None = None
    ids: tuple[str, ...] = ()
    order: str = "due"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, stored with the session."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


ORDERS = ("due", "weakest")


def _far_future() -> datetime:
    return datetime.max.replace(tzinfo=UTC)


def pick_questions(bank: Bank, states: dict[str, QuestionState], filters: Filters) -> list[Question]:
    """The questions to ask, in the order of ``filters.order`` (see the module docstring)."""
    if filters.ids:
        return [bank[i] for i in filters.ids][: filters.count]
    chosen = bank.filter(
        sections=filters.sections,
        types=filters.types,
        difficulties=filters.difficulties,
        grill=True if filters.grill else None,
    )

    def due_at(q: Question) -> datetime:
        return states[q.id].due_at or _far_future()

    def recall(q: Question) -> float:
        return states[q.id].recall if states[q.id].recall is not None else 1.0

    due = sorted((q for q in chosen if states[q.id].due), key=due_at)
    new = [q for q in chosen if not states[q.id].practiced]
    if filters.order == "weakest":
        practiced = sorted((q for q in chosen if states[q.id].practiced), key=recall)
        ordered = [q for q in practiced if not filters.due or states[q.id].due] + ([] if filters.due else new)
    elif filters.due:
        ordered = due
    else:
        later = sorted((q for q in chosen if states[q.id].practiced and not states[q.id].due), key=due_at)
        ordered = due + new + later
    return ordered[: filters.count] if filters.count is not None else ordered


@dataclass(frozen=True)
class Outcome:
    """A graded answer, whichever grader produced it: verdict (correct / partial / close / incorrect / uncertain).

    ``why`` is the grader's evidence as JSON-able data; ``shown`` the label to display when it differs from the
    verdict (an uncertain free-text grade is shown as correct, partial or incorrect, flagged for a check).
    """

    verdict: str
    score: float
    feedback: str
    why: Any = None
    shown: str | None = None

    @property
    def label(self) -> str:
        """What the learner sees: correct, partial, close or incorrect (never "uncertain")."""
        return self.shown or self.verdict


def _free_text_outcome(grade: Any) -> Outcome:
    why = grade.why() if callable(getattr(grade, "why", None)) else None
    return Outcome(grade.verdict, grade.score, grade.feedback, why, getattr(grade, "shown", None))


def _free_text(question: Question, answer: str) -> Outcome:
    from tfdojo.practice.grading.free_text import grade_free_text

    return _free_text_outcome(grade_free_text(question.rubric, answer))


def _free_text_cross(question: Question, answer: str) -> Outcome:
    """Free text read by the fast path and then the cross-encoder (``grading/cross_stage.py``; docs/grading.md)."""
    from tfdojo.practice.grading.free_text import grade_free_text

    return _free_text_outcome(grade_free_text(question.rubric, answer, cross=True))


def _numeric(question: Question, answer: str) -> Outcome:
    from tfdojo.practice.grading.numeric import asked_unit, grade_numeric

    if question.numeric is None:
        raise BankError(f"question {question.id!r} is numeric but has no [numeric] table; fix the bank file")
    grade = grade_numeric(question.numeric, answer, asked_unit(question.prompt))
    why = {
        "read": grade.given.text,
        "expected": grade.expected,
        "unit": grade.unit,
        "relative_error": grade.relative_error,
        "tolerance": grade.tolerance,
        "derivation": grade.derivation,
    }
    return Outcome(grade.verdict, grade.score, grade.feedback, why)


def _code(question: Question, source: str) -> Outcome:
    from tfdojo.practice.code import grade_code

    grade = grade_code(question.id, source)
    tests = getattr(grade, "tests", ())
    why = {"tests": [{"name": t.name, "ok": t.ok, "message": t.message} for t in tests]}
    return Outcome("correct" if grade.passed else "incorrect", 1.0 if grade.passed else 0.0, grade.feedback, why)


Grader = Callable[[Question, str], Outcome]


@dataclass(frozen=True)
class Graders:
    """The grader used for each kind of question (tests substitute stubs)."""

    free_text: Grader = _free_text
    numeric: Grader = _numeric
    code: Grader = _code

    @classmethod
    def reading(cls, cross: bool) -> Graders:
        """The default graders; with ``cross``, free text is read by the cross stage too (better on terse and
        paraphrased answers, worse on confident-wrong ones, ~0.35 s more CPU per answer: docs/grading.md)."""
        return cls(free_text=_free_text_cross) if cross else cls()

    def grade(self, question: Question, answer: str) -> Outcome:
        """Route by question type; for coding, ``answer`` is the submitted source."""
        if question.type == "numeric":
            return self.numeric(question, answer)
        if question.type == "coding":
            return self.code(question, answer)
        return self.free_text(question, answer)


def check_length(question: Question, answer: str) -> None:
    """Refuse (AnswerParseError, nothing recorded) an answer longer than the cap for its type."""
    cap = MAX_SOURCE_CHARS if question.type == "coding" else MAX_ANSWER_CHARS
    if len(answer) > cap:
        what = "source file" if question.type == "coding" else "answer"
        raise AnswerParseError(
            f"your {what} is {len(answer):,} characters; the cap is {cap:,} (an interview answer is a few hundred "
            "words): shorten it"
        )


def read_submission(path_text: str) -> str:
    """The source code in the file a coding answer names; ProgressError when it cannot be read."""
    path = Path(path_text.strip()).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ProgressError(f"cannot read your solution file {path}: {e}; give the path to a .py file") from None


def starter_copy(question: Question, work_dir: Path) -> tuple[Path, Path]:
    """The exercise's starter file and a fresh working copy of it in ``work_dir``.

    Every review starts from the starter; the previous working copy, if it was edited, is kept beside it as
    ``<id>.previous.py``.
    """
    from tfdojo.practice.code import load_exercise

    exercise = load_exercise(question.id)
    starter = exercise.path / "starter.py"
    copy = work_dir / f"{question.id}.py"
    work_dir.mkdir(parents=True, exist_ok=True)
    if copy.exists() and copy.read_text(encoding="utf-8") != exercise.starter:
        shutil.copyfile(copy, work_dir / f"{question.id}.previous.py")
    shutil.copyfile(starter, copy)
    return starter, copy


def hint_for(question: Question) -> str:
    """A nudge: the first key point of the rubric (using it makes the attempt not cold)."""
    return question.rubric.key_points[0].text


DONT_KNOW = Outcome(
    "incorrect",
    0.0,
    "You said you don't know. Read the model answer below; the question comes back soon (rated Again).",
    {"dont_know": True},
)


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
    """One drill: opens a session in the store, grades and records each answer, applies overrides.

    ``submissions`` holds what was recorded in this run, in order (the end-of-session summary reads it).
    """

    store: ProgressStore
    filters: Filters = field(default_factory=Filters)
    graders: Graders = field(default_factory=Graders)
    clock: Callable[[], datetime] = _now
    id: int = 0
    submissions: list[Submission] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.id:
            self.id = self.store.start_session(self.filters.as_dict(), self.clock())

    def questions(self, bank: Bank) -> list[Question]:
        """The questions this drill asks, given the progress so far."""
        return pick_questions(bank, self.states(bank), self.filters)

    def states(self, bank: Bank) -> dict[str, QuestionState]:
        """Every bank question's standing now."""
        return question_states([q.id for q in bank], self.store.attempts(), self.store.cards(), self.clock())

    def plan(self, questions: list[Question]) -> None:
        """Store the questions this session will ask, so that an interrupted drill can be resumed."""
        self.store.set_plan(self.id, [q.id for q in questions])

    def asked(self, count: int) -> None:
        """Record that ``count`` planned questions were asked (answered, skipped or given up)."""
        self.store.set_asked(self.id, count)

    def submit(self, question: Question, answer: str, seconds: float, hint_used: bool = False) -> Submission:
        """Grade an answer and record it at once; raises (recording nothing) when the answer cannot be read."""
        check_length(question, answer)
        return self._record(question, answer, self.graders.grade(question, answer), seconds, hint_used)

    def dont_know(self, question: Question, seconds: float, hint_used: bool = False) -> Submission:
        """ "I don't know": recorded as incorrect (rated Again), with no grading."""
        return self._record(question, "", DONT_KNOW, seconds, hint_used)

    def _record(self, question: Question, answer: str, outcome: Outcome, seconds: float, hint: bool) -> Submission:
        cold = not hint and not self.store.tried_in_session(self.id, question.id)
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
            hint_used=hint,
            seconds=seconds,
            session_id=self.id,
            why=outcome.why,
        )
        self.store.record(attempt)
        submission = Submission(question, attempt, outcome)
        self.submissions.append(submission)
        return submission

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
        updated = dataclasses.replace(a, override=choice, rating=int(rating))
        self.submissions = [
            Submission(s.question, updated, s.outcome) if s is submission else s for s in self.submissions
        ]

    def finish(self) -> None:
        """Close the session."""
        self.store.end_session(self.id, self.clock())
