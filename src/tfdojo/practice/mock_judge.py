"""One graded answer in a form every front end can show: verdict, score, the "why" lines, and what was missed.

The free-text grader's evidence (which clause met which key point, which misconception was stated) and the numeric
grader's derivation become :class:`WhyLine` rows; :func:`record` then stores the attempt through the drill session's
own rating and recording logic, so the web page, the mock interview and the terminal drill rate answers alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from tfdojo.practice.grading.grade import PointMatch
from tfdojo.practice.rubric import KeyPoint, Misconception, Rubric
from tfdojo.practice.schema import Question
from tfdojo.practice.session import DrillSession, Graders, Outcome, Submission
from tfdojo.practice.store import ProgressStore

WhyKind = Literal["covered", "contradicted", "missed", "uncertain", "misconception", "numeric"]


@dataclass(frozen=True)
class WhyLine:
    """One reason behind a grade: a key point met (by which clause), missed, unsure, or a misconception stated."""

    kind: WhyKind
    point: str
    clause: str | None = None
    similarity: float | None = None
    note: str = ""


@dataclass(frozen=True)
class Judgement:
    """A graded answer: ``missed`` and ``misconceptions`` drive the mock interview's follow-ups."""

    verdict: str
    score: float
    feedback: str
    why: tuple[WhyLine, ...] = ()
    missed: tuple[KeyPoint, ...] = ()
    misconceptions: tuple[Misconception, ...] = ()

    @property
    def outcome(self) -> Outcome:
        """The drill session's view of this grade."""
        return Outcome(self.verdict, self.score, self.feedback)


def _how(match: PointMatch) -> str:
    """What decided a point's status beyond the similarity shown: an alias said, or the cross-encoder's reading."""
    if match.cross is not None:
        return f"cross-encoder, P {match.cross:.2f}"
    return "alias" if match.by_alias else ""


def _free_text(rubric: Rubric, answer: str, cross: bool = False) -> Judgement:
    from tfdojo.practice.grading.free_text import grade_free_text

    g = grade_free_text(rubric, answer, cross=cross)
    contradicted = g.contradicted  # stated wrongly: a wrong version of the point was closer than the point
    why = [WhyLine("covered", m.point.text, m.clause, m.similarity, _how(m)) for m in g.covered]
    why += [WhyLine("contradicted", m.point.text, m.clause, m.similarity, _how(m)) for m in contradicted]
    why += [WhyLine("uncertain", m.point.text, m.clause, m.similarity, "stated with a negation") for m in g.uncertain]
    why += [WhyLine("missed", m.point.text, None, m.similarity) for m in g.missed]
    why += [
        WhyLine("misconception", m.misconception.text, m.clause, m.similarity, m.misconception.feedback)
        for m in g.misconceptions
    ]
    return Judgement(
        g.shown if g.verdict == "uncertain" else g.verdict,
        g.score,
        g.feedback,
        tuple(why),
        tuple(m.point for m in (*contradicted, *g.missed)),
        tuple(m.misconception for m in g.misconceptions),
    )


def _numeric(question: Question, answer: str) -> Judgement:
    from tfdojo.practice.grading.numeric import grade_numeric

    assert question.numeric is not None  # the schema guarantees it for numeric questions
    g = grade_numeric(question.numeric, answer)
    line = WhyLine("numeric", f"expected {g.expected:.4g} {g.unit}".strip(), g.given.text, None, g.derivation)
    missed = () if g.verdict == "correct" else question.rubric.key_points
    return Judgement(g.verdict, g.score, g.feedback, (line,), tuple(missed))


def _code(question: Question, source: str) -> Judgement:
    from tfdojo.practice.code import grade_code

    g = grade_code(question.id, source)
    why = tuple(WhyLine("covered" if t.ok else "missed", t.name, None, None, t.message) for t in g.tests)
    return Judgement("correct" if g.passed else "incorrect", 1.0 if g.passed else 0.0, g.feedback, why)


def judge(question: Question, answer: str, rubric: Rubric | None = None, *, cross: bool = False) -> Judgement:
    """Grade ``answer`` by the question's type; ``rubric`` replaces the question's own (a follow-up's narrower one).
    ``cross``: free text is read by the cross stage too (``grading/cross_stage.py``; docs/grading.md)."""
    if question.type == "coding":
        return _code(question, answer)
    if question.type == "numeric" and rubric is None:
        return _numeric(question, answer)
    return _free_text(rubric or question.rubric, answer, cross)


def judge_cross(question: Question, answer: str, rubric: Rubric | None = None) -> Judgement:
    """``judge`` with free text read by the cross stage too: what `--cross` selects in the web trainer and the mock."""
    return judge(question, answer, rubric, cross=True)


Judge = Callable[[Question, str, Rubric | None], Judgement]


def judge_for(cross: bool) -> Judge:
    """The judge a front end uses: the fast path alone, or with ``cross`` the cross stage too."""
    return judge_cross if cross else judge


@dataclass
class _Resumed(DrillSession):
    """A drill session already open in the store (``id`` given), so a web request can add to it."""

    def __post_init__(self) -> None:
        """The session exists: do not open another."""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def record(
    store: ProgressStore,
    session_id: int,
    question: Question,
    answer: str,
    seconds: float,
    judgement: Judgement,
    clock: Callable[[], datetime] = _utc_now,
) -> Submission:
    """Store a judged answer in session ``session_id`` (on disk when this returns), rated as the drill rates it."""

    def fixed(_q: Question, _a: str) -> Outcome:
        return judgement.outcome

    drill = _Resumed(store=store, graders=Graders(fixed, fixed, fixed), clock=clock, id=session_id)
    return drill.submit(question, answer, seconds)


def override(
    store: ProgressStore, submission: Submission, knew: bool, clock: Callable[[], datetime] = _utc_now
) -> None:
    """ "I knew it" / "I didn't" in place of the grade of a recorded answer (its card is rebuilt)."""
    session_id = submission.attempt.session_id or 0
    _Resumed(store=store, clock=clock, id=session_id).override(submission, knew)
