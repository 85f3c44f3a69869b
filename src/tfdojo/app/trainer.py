"""What the web trainer holds between requests: the bank, the grader, and the timed sessions and mock interviews open.

Progress itself is never held here: each request opens the SQLite store (the same file as the terminal drill), so
a browser tab and a terminal can practise at once. What lives in memory is only where an open session stands.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from tfdojo.app.config import WebConfig
from tfdojo.errors import ProgressError
from tfdojo.practice.counters import QuestionState, question_states
from tfdojo.practice.grading.judge import Opinion, SecondOpinion
from tfdojo.practice.loader import Bank, load_bank, load_bank_from
from tfdojo.practice.mock import MockInterview
from tfdojo.practice.mock_judge import Judge, Judgement, judge, judge_for
from tfdojo.practice.session import Submission
from tfdojo.practice.store import ProgressStore


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class WebDrill:
    """A timed session in a tab: its store session, the questions in order, and where it stands."""

    session_id: int
    question_ids: list[str]
    index: int = 0
    shown_at: float | None = None
    last: Submission | None = None
    last_judgement: Judgement | None = None
    last_opinion: Opinion | str | None = None  # the judge's opinion of the last answer, or why there is none

    @property
    def current(self) -> str | None:
        """The id of the question being asked; None when the session is done."""
        return self.question_ids[self.index] if self.index < len(self.question_ids) else None


@dataclass
class WebMock:
    """A mock interview in a tab, with its store session and when the current prompt was shown."""

    session_id: int
    interview: MockInterview
    shown_at: float | None = None
    last_verdict: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)  # one answer at a time, without blocking other tabs


@dataclass
class Trainer:
    """The app's shared state; methods that touch the open sessions hold ``lock``."""

    config: WebConfig
    judge: Judge = judge
    clock: Callable[[], datetime] = _utc_now
    bank: Bank = field(init=False)
    drills: dict[str, WebDrill] = field(default_factory=dict)
    mocks: dict[str, WebMock] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    coding_session: int | None = None
    code_opened: dict[str, float] = field(default_factory=dict)
    second_opinion: SecondOpinion | None = field(init=False)

    def __post_init__(self) -> None:
        self.bank = load_bank_from(self.config.bank_dir) if self.config.bank_dir else load_bank()
        if self.judge is judge:  # the bundled graders (a test may pass its own): with the cross stage when asked
            self.judge = judge_for(self.config.cross)
        self.second_opinion = SecondOpinion(self.config.judge) if self.config.judge else None

    def store(self) -> ProgressStore:
        """A fresh connection to the progress store (close it: use as a context manager)."""
        return ProgressStore.open(self.config.data_dir)

    def states(self, store: ProgressStore) -> dict[str, QuestionState]:
        """Every question's state now."""
        return question_states([q.id for q in self.bank], store.attempts(), store.cards(), self.clock())

    def drill(self, key: str) -> WebDrill:
        """The timed session with this key (ProgressError when unknown, e.g. after a server restart)."""
        with self.lock:
            if key not in self.drills:
                raise ProgressError("this session is not open (the server may have restarted); start a new one")
            return self.drills[key]

    def mock(self, key: str) -> WebMock:
        """The mock interview with this key."""
        with self.lock:
            if key not in self.mocks:
                raise ProgressError("this interview is not open (the server may have restarted); start a new one")
            return self.mocks[key]

    def add_drill(self, drill: WebDrill) -> str:
        """Register a timed session; returns its key (unguessable, it is in the URL)."""
        key = secrets.token_urlsafe(12)
        with self.lock:
            self.drills[key] = drill
        return key

    def add_mock(self, mock: WebMock) -> str:
        """Register a mock interview; returns its key."""
        key = secrets.token_urlsafe(12)
        with self.lock:
            self.mocks[key] = mock
        return key

    def coding_session_id(self, store: ProgressStore) -> int:
        """The store session that this server's coding runs are recorded in (opened on first use)."""
        with self.lock:
            if self.coding_session is None:
                self.coding_session = store.start_session({"web": "coding"}, self.clock())
            return self.coding_session


def elapsed_since(shown_at: float | None) -> float:
    """Seconds since a prompt was shown (0 when it never was)."""
    return 0.0 if shown_at is None else max(time.monotonic() - shown_at, 0.0)
