"""A mock interview: timed, across sections, at a level that follows how it is going, with probing follow-ups.

    pick a question (next section in a seeded order, difficulty closest to the current level)
      -> grade the answer -> level up (score >= 0.65) or down (score < 0.35)
      -> a misconception stated?   ask about the clause that stated it
         a key point missed?       ask the heaviest missed point's ``follow_up`` (graded on that point alone)
      -> next question, until the time budget is spent or the bank runs out

Everything random comes from ``random.Random(seed)`` and the graders are deterministic, so the same seed and the
same answers give the same interview. Coding exercises are left to the coding page (they need an editor, not talk).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from tfdojo.errors import AnswerParseError, ConfigError, ProgressError
from tfdojo.practice.loader import Bank
from tfdojo.practice.mock_judge import Judge, Judgement, judge, judge_for, record
from tfdojo.practice.rubric import Rubric
from tfdojo.practice.schema import SECTIONS, Question
from tfdojo.practice.session import Submission
from tfdojo.practice.store import ProgressStore

LEVELS = ("easy", "medium", "hard")
UP_SCORE = 0.65  # a main answer scoring this much raises the level
DOWN_SCORE = 0.35  # below this the level drops
MIN_SECONDS_LEFT = 60.0  # no new question with less than a minute left


@dataclass(frozen=True)
class MockConfig:
    """How long the interview runs, its seed, the starting level and (optionally) the sections it covers; ``cross``:
    free-text answers are read by the cross-encoder too (``grading/cross_stage.py``; docs/grading.md)."""

    minutes: int = 30
    seed: int = 0
    level: str = "medium"
    sections: tuple[str, ...] = ()
    follow_ups: bool = True
    cross: bool = False

    def __post_init__(self) -> None:
        if not 1 <= self.minutes <= 240:
            raise ConfigError(f"a mock interview lasts 1 to 240 minutes, not {self.minutes}; pass --minutes in range")
        if self.level not in LEVELS:
            raise ConfigError(f"level {self.level!r} is not one of {', '.join(LEVELS)}")
        unknown = [s for s in self.sections if s not in SECTIONS]
        if unknown:
            raise ConfigError(f"section {unknown[0]!r} is not one of: {', '.join(SECTIONS)}")


@dataclass(frozen=True)
class Prompt:
    """What the interviewer asks: a bank question, or a follow-up on one (graded on ``rubric``)."""

    kind: Literal["question", "follow_up"]
    question: Question
    text: str
    level: str
    reason: str = ""
    rubric: Rubric | None = None


@dataclass(frozen=True)
class Turn:
    """One exchange: the prompt, the answer, how long it took and how it was graded."""

    prompt: Prompt
    answer: str
    seconds: float
    judgement: Judgement


def _level_step(level: str, score: float) -> str:
    """The next level after a main answer scoring ``score``."""
    i = LEVELS.index(level)
    if score >= UP_SCORE:
        i = min(i + 1, len(LEVELS) - 1)
    elif score < DOWN_SCORE:
        i = max(i - 1, 0)
    return LEVELS[i]


def _clause_for(judgement: Judgement, misconception_text: str) -> str:
    for line in judgement.why:
        if line.kind == "misconception" and line.point == misconception_text and line.clause:
            return line.clause
    return misconception_text


def follow_up_for(question: Question, judgement: Judgement) -> Prompt | None:
    """The probing follow-up a grade calls for, or None when the answer missed nothing and stated no misconception."""
    if judgement.misconceptions:
        m = judgement.misconceptions[0]
        said = _clause_for(judgement, m.text).strip().rstrip(".")
        points = judgement.missed or question.rubric.key_points
        return Prompt(
            "follow_up",
            question,
            f'You said: "{said}". Are you sure? Walk me through what really happens there.',
            question.difficulty,
            "a misconception was stated",
            Rubric(key_points=points, misconceptions=question.rubric.misconceptions),
        )
    if not judgement.missed:
        return None
    point = max(judgement.missed, key=lambda p: p.weight)  # max keeps the first of equal weights
    text = (
        point.follow_up
        or f"Let's go one level deeper on that. What else belongs in a full answer to: {question.prompt}"
    )
    rubric = Rubric(key_points=(point,), misconceptions=question.rubric.misconceptions)
    return Prompt("follow_up", question, text, question.difficulty, "a key point was missed", rubric)


@dataclass
class MockInterview:
    """The interview's state: call :attr:`current` for the prompt, :meth:`answer` to reply, until :attr:`finished`."""

    bank: Bank
    config: MockConfig = field(default_factory=MockConfig)
    judge: Judge = judge
    turns: list[Turn] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.judge is judge:  # the bundled graders (a test may pass its own): with the cross stage when asked
            self.judge = judge_for(self.config.cross)
        sections = set(self.config.sections)
        self._pool = [q for q in self.bank if q.type != "coding" and (not sections or q.section in sections)]
        if not self._pool:
            raise ConfigError("no questions to ask with these sections; choose sections that have non-coding questions")
        self._rng = random.Random(self.config.seed)
        order = sorted({q.section for q in self._pool})
        self._rng.shuffle(order)
        self._sections = order
        self._next_section = 0
        self._asked: set[str] = set()
        self.level = self.config.level
        self.elapsed = 0.0
        self._current: Prompt | None = self._pick()

    @property
    def budget_seconds(self) -> float:
        """The interview's length in seconds."""
        return self.config.minutes * 60.0

    @property
    def seconds_left(self) -> float:
        """Time left in the budget (answers' seconds are what count)."""
        return max(self.budget_seconds - self.elapsed, 0.0)

    @property
    def current(self) -> Prompt | None:
        """The prompt waiting for an answer; None once the interview is over."""
        return self._current

    @property
    def finished(self) -> bool:
        """Whether the interview is over (time spent or no question left)."""
        return self._current is None

    def _candidates(self, section: str) -> list[Question]:
        return [q for q in self._pool if q.section == section and q.id not in self._asked]

    def _pick(self) -> Prompt | None:
        """The next main question: the next section in the seeded order that has one left, nearest the level."""
        if self.seconds_left < MIN_SECONDS_LEFT:
            return None
        target = LEVELS.index(self.level)
        for step in range(len(self._sections)):
            section = self._sections[(self._next_section + step) % len(self._sections)]
            candidates = self._candidates(section)
            if not candidates:
                continue
            distance = min(abs(LEVELS.index(q.difficulty) - target) for q in candidates)
            nearest = sorted(
                (q for q in candidates if abs(LEVELS.index(q.difficulty) - target) == distance), key=lambda q: q.id
            )
            question = self._rng.choice(nearest)
            self._next_section = (self._next_section + step + 1) % len(self._sections)
            self._asked.add(question.id)
            return Prompt("question", question, question.prompt, question.difficulty)
        return None

    def answer(self, text: str, seconds: float) -> Turn:
        """Grade the answer to the current prompt, then move on (follow-up, next question, or the end)."""
        prompt = self._current
        if prompt is None:
            raise ProgressError("the mock interview is over; start a new one to answer more")
        try:
            judgement = self.judge(prompt.question, text, prompt.rubric)
        except AnswerParseError as e:  # an interviewer notes "no number given" and moves on
            judgement = Judgement("incorrect", 0.0, str(e), missed=prompt.question.rubric.key_points)
        turn = Turn(prompt, text, max(float(seconds), 0.0), judgement)
        self.turns.append(turn)
        self.elapsed += turn.seconds
        nxt = None
        if prompt.kind == "question":
            self.level = _level_step(self.level, judgement.score)
            if self.config.follow_ups and self.seconds_left >= MIN_SECONDS_LEFT:
                nxt = follow_up_for(prompt.question, judgement)
        self._current = nxt or self._pick()
        return turn

    def stop(self) -> None:
        """End the interview now (the report covers the turns so far)."""
        self._current = None


def record_turn(store: ProgressStore, session_id: int, turn: Turn) -> Submission | None:
    """Store a main question's answer as a practice attempt (follow-ups grade one point, so they are not stored)."""
    if turn.prompt.kind != "question":
        return None
    return record(store, session_id, turn.prompt.question, turn.answer, turn.seconds, turn.judgement)


def main_turns(turns: Iterable[Turn]) -> list[Turn]:
    """The answers to bank questions (follow-ups left out)."""
    return [t for t in turns if t.prompt.kind == "question"]
