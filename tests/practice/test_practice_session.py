"""Drill logic without a terminal: question order, routing by type, cold flags, overrides, coding files."""

from datetime import UTC, datetime, timedelta

import pytest
from drill_bank import write_bank
from fsrs import Rating

from tfdojo.errors import AnswerParseError, ProgressError
from tfdojo.practice.session import DrillSession, Filters, Graders, Outcome, read_submission, starter_copy
from tfdojo.practice.store import Attempt, ProgressStore

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


class StubGrader:
    """Returns a fixed verdict and remembers what it was asked."""

    def __init__(self, verdict="correct"):
        self.verdict, self.calls = verdict, []

    def __call__(self, question, answer):
        self.calls.append((question.id, answer))
        return Outcome(self.verdict, 1.0 if self.verdict == "correct" else 0.0, "stub feedback")


@pytest.fixture
def bank(tmp_path):
    return write_bank(tmp_path / "bank")


@pytest.fixture
def store(tmp_path):
    with ProgressStore(tmp_path / "progress.sqlite3") as s:
        yield s


def test_due_questions_come_first_then_new_then_later(bank, store):
    store.record(Attempt("design-serving", T0, "x", "incorrect", 0.0, int(Rating.Again)))  # due again in 1 min
    store.record(Attempt("why-scale-scores", T0, "x", "correct", 1.0, int(Rating.Easy)))  # due in days
    drill = DrillSession(store, clock=Clock(T0 + timedelta(hours=1)))
    assert [q.id for q in drill.questions(bank)] == [
        "design-serving",
        "kv-cache-70b",
        "write-softmax",
        "why-scale-scores",
    ]
    due_only = DrillSession(store, Filters(due=True), clock=Clock(T0 + timedelta(hours=1)))
    assert [q.id for q in due_only.questions(bank)] == ["design-serving"]
    grill = DrillSession(store, Filters(grill=True, count=1), clock=Clock(T0 + timedelta(hours=1)))
    assert [q.id for q in grill.questions(bank)] == ["kv-cache-70b"]  # the grill's new question before a later one
    by_type = DrillSession(store, Filters(sections=("attention-maths",), types=("coding",)), clock=Clock(T0))
    assert [q.id for q in by_type.questions(bank)] == ["write-softmax"]


def test_answers_are_routed_by_type_and_recorded(bank, store):
    free, code = StubGrader("partial"), StubGrader("correct")
    drill = DrillSession(store, graders=Graders(free_text=free, code=code), clock=Clock(T0))
    drill.submit(bank["why-scale-scores"], "because the variance grows", seconds=30)
    drill.submit(bank["write-softmax"], "def softmax(x): ...", seconds=300)
    numeric = drill.submit(bank["kv-cache-70b"], "2.5 GiB", seconds=40)  # the real numeric grader
    assert free.calls == [("why-scale-scores", "because the variance grows")]
    assert code.calls == [("write-softmax", "def softmax(x): ...")]
    assert numeric.outcome.verdict == "correct" and "2 · 80 · 8 · 128" in numeric.outcome.feedback
    stored = {a.question_id: a for a in store.attempts()}
    assert {q: a.verdict for q, a in stored.items()} == {
        "why-scale-scores": "partial",
        "write-softmax": "correct",
        "kv-cache-70b": "correct",
    }
    assert all(a.session_id == drill.id for a in stored.values())


def test_an_unreadable_numeric_answer_records_nothing(bank, store):
    drill = DrillSession(store, clock=Clock(T0))
    with pytest.raises(AnswerParseError):
        drill.submit(bank["kv-cache-70b"], "no idea", seconds=10)
    assert store.attempts() == []


def test_cold_is_the_first_try_in_a_session_without_a_hint(bank, store):
    clock = Clock(T0)
    drill = DrillSession(store, graders=Graders(free_text=StubGrader("incorrect")), clock=clock)
    q = bank["why-scale-scores"]  # 2 minutes expected
    first = drill.submit(q, "a", seconds=30)
    second = drill.submit(q, "b", seconds=30)
    hinted = DrillSession(store, graders=Graders(free_text=StubGrader()), clock=clock).submit(q, "c", 30, True)
    assert (first.attempt.cold, second.attempt.cold, hinted.attempt.cold) == (True, False, False)
    fresh = DrillSession(store, graders=Graders(free_text=StubGrader()), clock=clock).submit(q, "d", seconds=30)
    assert fresh.attempt.cold and fresh.attempt.rating == Rating.Easy  # right, cold, under half of 2 minutes
    assert first.attempt.rating == Rating.Again and hinted.attempt.rating == Rating.Good


def test_override_replaces_the_grade(bank, store):
    drill = DrillSession(store, graders=Graders(free_text=StubGrader("incorrect")), clock=Clock(T0))
    submission = drill.submit(bank["why-scale-scores"], "terse but right", seconds=100)
    drill.override(submission, knew=True)
    (stored,) = store.attempts()
    assert stored.override == "knew" and stored.rating == Rating.Good  # correct, cold, but not fast (100 s > 60 s)
    drill.finish()
    assert store.sessions()[0].ended_at == T0


def test_every_review_starts_from_a_fresh_starter_and_the_answer_file_is_read(bank, tmp_path):
    question = bank["write-softmax"].model_copy(update={"id": "causal-mask"})  # a bundled exercise
    starter, copy = starter_copy(question, tmp_path / "work")
    assert copy.read_text() == starter.read_text()
    copy.write_text("my work")
    assert read_submission(f"  {copy}  ") == "my work"
    assert starter_copy(question, tmp_path / "work")[1].read_text() == starter.read_text()  # reset for the review
    assert (tmp_path / "work" / "causal-mask.previous.py").read_text() == "my work"  # the old work is kept
    with pytest.raises(ProgressError, match="cannot read your solution file"):
        read_submission(str(tmp_path / "missing.py"))


@pytest.mark.slow
def test_the_real_graders_are_routed_by_type(bank, store):
    """The default graders, imported lazily: MiniLM free text, the numeric calculator, the code sandbox."""
    from tfdojo.practice.code import load_exercise

    drill = DrillSession(store, clock=Clock(T0))
    covered = "The first point holds. The second point holds too. And the third point is true as well."
    good = drill.submit(bank["why-scale-scores"], covered, seconds=60).outcome
    off_topic = drill.submit(bank["why-scale-scores"], "Bananas are yellow.", seconds=60).outcome
    assert off_topic.verdict == "incorrect" and good.score > off_topic.score
    exercise = load_exercise("causal-mask")
    coding = bank["write-softmax"].model_copy(update={"id": "causal-mask"})
    assert drill.submit(coding, exercise.solution, seconds=600).outcome.verdict == "correct"
