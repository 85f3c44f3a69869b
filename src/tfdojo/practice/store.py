"""Progress on disk: every attempt, the FSRS card of each question, and drill sessions, in one SQLite file.

The file is ``progress.sqlite3`` in the data folder: ``--data-dir`` if given, else ``$TFDOJO_HOME``, else the
platform's user data folder (``platformdirs.user_data_dir("tfdojo")``). Journal mode WAL with
``synchronous=FULL`` and one transaction per write, so an answer is on disk once ``record`` returns, even if the
process is killed straight after. The schema version is ``PRAGMA user_version``; :data:`MIGRATIONS` lists the
steps from an empty file, applied in order. A damaged file is reported, never silently replaced. Commands that
only read open the file read-only (see :class:`ProgressStore`); a writer finds out at open time, with the path,
when the file or its folder cannot be written.

Cards are derived data: each is the replay of its question's attempts through the scheduler, kept in step with
the attempts inside the same transaction.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs
from fsrs import Card, Rating

from tfdojo.errors import ProgressError
from tfdojo.practice.scheduler import SpacedRepetition

FILE_NAME = "progress.sqlite3"
LOCK_WAIT_S = 10.0  # how long an open waits for another connection's lock
ENV_HOME = "TFDOJO_HOME"

MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # v1: sessions, attempts, cards
        "CREATE TABLE sessions (id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, ended_at TEXT,"
        " filters TEXT NOT NULL DEFAULT '{}')",
        "CREATE TABLE attempts (id INTEGER PRIMARY KEY, question_id TEXT NOT NULL, at TEXT NOT NULL,"
        " answer TEXT NOT NULL, verdict TEXT NOT NULL, score REAL NOT NULL, rating INTEGER NOT NULL,"
        " cold INTEGER NOT NULL, hint_used INTEGER NOT NULL, override TEXT, seconds REAL NOT NULL,"
        " session_id INTEGER REFERENCES sessions(id))",
        "CREATE INDEX attempts_by_question ON attempts (question_id, at)",
        "CREATE TABLE cards (question_id TEXT PRIMARY KEY, card TEXT NOT NULL, due TEXT NOT NULL)",
    ),
    (  # v2: stable ids on attempts and sessions, so that importing an export merges without duplicates
        "ALTER TABLE attempts ADD COLUMN uid TEXT",
        "UPDATE attempts SET uid = lower(hex(randomblob(16)))",
        "CREATE UNIQUE INDEX attempts_by_uid ON attempts (uid)",
        "ALTER TABLE sessions ADD COLUMN uid TEXT",
        "UPDATE sessions SET uid = lower(hex(randomblob(16)))",
        "CREATE UNIQUE INDEX sessions_by_uid ON sessions (uid)",
    ),
    (  # v3: the why of each grade (JSON); a session's planned questions and how many were asked, to resume it
        "ALTER TABLE attempts ADD COLUMN why TEXT",
        "ALTER TABLE sessions ADD COLUMN plan TEXT",
        "ALTER TABLE sessions ADD COLUMN asked INTEGER NOT NULL DEFAULT 0",
    ),
    (  # v4: an outside judge's opinion (--judge), kept beside the grade it never changes
        "ALTER TABLE attempts ADD COLUMN second_opinion TEXT",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def data_dir(override: Path | None = None) -> Path:
    """The folder holding progress: the ``--data-dir`` flag, else ``$TFDOJO_HOME``, else the user data folder."""
    if override is not None:
        return Path(override)
    if os.environ.get(ENV_HOME):
        return Path(os.environ[ENV_HOME])
    return Path(platformdirs.user_data_dir("tfdojo", appauthor=False))


def _new_uid() -> str:
    return uuid.uuid4().hex


def utc(when: datetime) -> datetime:
    """``when`` in UTC (naive times are taken as UTC), so stored times sort as text."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


@dataclass(frozen=True)
class Attempt:
    """One answer to one question: what was said, how it was graded, and how it was given.

    ``cold``: the first try at this question in its session, with no hint. ``override``: "knew" / "didnt"
    when the user replaced the grade. ``rating``: the FSRS rating the attempt gave the card (1–4). ``why``: the
    grader's evidence as JSON-able data (None for attempts graded before it was kept). ``second_opinion``: what
    an outside judge (``--judge``) said, advice only: verdict, score and rating are the offline grader's.
    """

    question_id: str
    at: datetime
    answer: str
    verdict: str
    score: float
    rating: int
    cold: bool = False
    hint_used: bool = False
    seconds: float = 0.0
    override: str | None = None
    session_id: int | None = None
    uid: str = field(default_factory=_new_uid)
    why: Any = None  # JSON-able evidence behind the grade (which sentence matched which point, …)
    second_opinion: dict[str, str] | None = None  # {"verdict", "reason", "model", "endpoint"} from --judge


@dataclass(frozen=True)
class Session:
    """A drill session: when it ran, the filters that chose its questions, its plan and how far it got."""

    id: int
    uid: str
    started_at: datetime
    ended_at: datetime | None
    filters: dict[str, Any]
    plan: tuple[str, ...] = ()
    asked: int = 0

    @property
    def left(self) -> tuple[str, ...]:
        """The planned questions not asked yet (empty for a finished session)."""
        return () if self.ended_at is not None else self.plan[self.asked :]


def _attempt(row: sqlite3.Row) -> Attempt:
    return Attempt(
        question_id=row["question_id"],
        at=datetime.fromisoformat(row["at"]),
        answer=row["answer"],
        verdict=row["verdict"],
        score=row["score"],
        rating=row["rating"],
        cold=bool(row["cold"]),
        hint_used=bool(row["hint_used"]),
        seconds=row["seconds"],
        override=row["override"],
        session_id=row["session_id"],
        uid=row["uid"],
        why=json.loads(row["why"]) if row["why"] else None,
        second_opinion=json.loads(row["second_opinion"]) if row["second_opinion"] else None,
    )


def _session(row: sqlite3.Row) -> Session:
    return Session(
        row["id"],
        row["uid"],
        datetime.fromisoformat(row["started_at"]),
        datetime.fromisoformat(row["ended_at"]) if row["ended_at"] else None,
        json.loads(row["filters"]),
        tuple(json.loads(row["plan"])) if row["plan"] else (),
        row["asked"],
    )


class _Probe(Exception):
    """Raised to roll back the write that checks a database is writable."""


def _moving_advice(path: Path) -> str:
    return (
        f"move it aside (mv '{path}' '{path}.broken') to start afresh, or pass --data-dir / set {ENV_HOME} "
        "to use another folder"
    )


def _is_read_only(error: sqlite3.Error) -> bool:
    """Whether SQLite refused a write because the file or its folder is read-only."""
    return getattr(error, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_READONLY


def read_only_error(path: Path) -> ProgressError:
    """The error for a write to a progress database that cannot be written."""
    return ProgressError(
        f"the progress database {path} is read-only: this command records progress and cannot write there; "
        f"make it and its folder writable (chmod u+w), or pass --data-dir / set {ENV_HOME} to use another folder"
    )


def _copy_read_only(path: Path, memory: sqlite3.Connection) -> None:
    """Copy the database at ``path`` into ``memory`` without writing anything beside it.

    ``mode=ro`` reads the write-ahead log too; where SQLite cannot set up its shared memory for that (a read-only
    folder), the file is read as immutable, which is exact when no log is left over.
    """
    for query in ("mode=ro", "immutable=1"):
        source = sqlite3.connect(f"{path.resolve().as_uri()}?{query}", uri=True, timeout=10)
        try:
            source.backup(memory)
            return
        except sqlite3.OperationalError as e:
            if not _is_read_only(e) and "unable to open" not in str(e):
                raise
        finally:
            source.close()
    raise sqlite3.DatabaseError("SQLite could not read it without writing")


class ProgressStore:
    """The progress database at ``path`` (created and migrated on open); use as a context manager.

    ``read_only=True`` is for commands that only read: the file is opened with ``mode=ro`` and copied into
    memory (where an older schema is migrated), so a database on a read-only disk or with read-only
    permissions still shows its progress; a missing file reads as empty and is not created.
    """

    def __init__(self, path: Path, scheduler: SpacedRepetition | None = None, read_only: bool = False) -> None:
        self.path = Path(path)
        self.scheduler = scheduler or SpacedRepetition()
        self.read_only = read_only
        try:
            self._db = self._connect()
        except sqlite3.Error as e:
            if _is_read_only(e):
                raise read_only_error(self.path) from None
            raise ProgressError(f"cannot open the progress database {self.path}: {e}") from None
        except OSError as e:
            raise ProgressError(f"cannot open the progress database {self.path}: {e}") from None
        self._db.row_factory = sqlite3.Row
        try:
            self._check_and_migrate_waiting()
        except sqlite3.DatabaseError as e:
            self._db.close()
            if _is_read_only(e):
                raise read_only_error(self.path) from None
            raise ProgressError(
                f"{self.path} is not a readable tfdojo progress database ({e}); {_moving_advice(self.path)}"
            ) from None

    def _connect(self) -> sqlite3.Connection:
        if not self.read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return sqlite3.connect(self.path, timeout=LOCK_WAIT_S, isolation_level=None)
        memory = sqlite3.connect(":memory:", isolation_level=None)
        if self.path.exists():
            try:
                _copy_read_only(self.path, memory)
            except sqlite3.DatabaseError as e:
                memory.close()
                raise ProgressError(
                    f"{self.path} is not a readable tfdojo progress database ({e}); {_moving_advice(self.path)}"
                ) from None
        return memory

    @classmethod
    def open(cls, folder: Path | None = None, read_only: bool = False) -> ProgressStore:
        """The store in the data folder (see :func:`data_dir`); ``read_only`` for commands that only read."""
        return cls(data_dir(folder) / FILE_NAME, read_only=read_only)

    def _check_and_migrate_waiting(self) -> None:
        """``_check_and_migrate``, retried while the file is locked: switching a new file to WAL can fail with
        "database is locked" without SQLite's busy wait when several connections create it at once (seen under
        load in ``test_many_connections_opening_a_new_progress_file_at_once_all_succeed``). Every step is idempotent."""
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                return self._check_and_migrate()
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _check_and_migrate(self) -> None:
        check = self._db.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {check}")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            self._db.close()
            raise ProgressError(
                f"{self.path} was written by a newer tfdojo (schema v{version}; this one knows v{SCHEMA_VERSION}); "
                "upgrade tfdojo, or pass --data-dir to use another folder"
            )
        if not self.read_only:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = FULL")
        self._db.execute("PRAGMA foreign_keys = ON")
        for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction():
                if self._db.execute("PRAGMA user_version").fetchone()[0] >= number:
                    continue  # another connection (a tab, a terminal) applied this step while we waited for the lock
                for statement in statements:
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number}")
        if not self.read_only:  # a write that is rolled back: fail now, with the path, not at the first answer
            with contextlib.suppress(_Probe), self.transaction():
                self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                raise _Probe

    @property
    def schema_version(self) -> int:
        """The file's schema version (``PRAGMA user_version``)."""
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed (and synced) on success, rolled back on any error."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as e:
            if _is_read_only(e):
                raise read_only_error(self.path) from None
            raise
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def close(self) -> None:
        """Close the connection (everything is already committed)."""
        self._db.close()

    def __enter__(self) -> ProgressStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # sessions

    def start_session(self, filters: dict[str, Any], now: datetime, uid: str | None = None) -> int:
        """Open a session and return its id."""
        with self.transaction() as db:
            cursor = db.execute(
                "INSERT INTO sessions (uid, started_at, filters) VALUES (?, ?, ?)",
                (uid or _new_uid(), utc(now).isoformat(), json.dumps(filters, sort_keys=True)),
            )
        return int(cursor.lastrowid or 0)

    def set_plan(self, session_id: int, plan: Iterable[str]) -> None:
        """Store the ids of the questions a session will ask, in order."""
        with self.transaction() as db:
            db.execute("UPDATE sessions SET plan = ? WHERE id = ?", (json.dumps(list(plan)), session_id))

    def set_asked(self, session_id: int, asked: int) -> None:
        """Record how many of the session's planned questions were asked (answered or skipped)."""
        with self.transaction() as db:
            db.execute("UPDATE sessions SET asked = ? WHERE id = ?", (asked, session_id))

    def end_session(self, session_id: int, now: datetime) -> None:
        """Mark a session finished."""
        with self.transaction() as db:
            db.execute("UPDATE sessions SET ended_at = ? WHERE id = ?", (utc(now).isoformat(), session_id))

    def sessions(self) -> list[Session]:
        """Every session, oldest first."""
        return [_session(r) for r in self._db.execute("SELECT * FROM sessions ORDER BY started_at, id")]

    def session(self, session_id: int) -> Session:
        """One session by id."""
        row = self._db.execute("SELECT * FROM sessions WHERE id = ?", (session_id,)).fetchone()
        if row is None:
            raise ProgressError(f"no session {session_id} in {self.path}")
        return _session(row)

    # attempts and cards

    def record(self, attempt: Attempt) -> None:
        """Store an attempt and update its question's card, in one transaction (on disk when this returns)."""
        with self.transaction() as db:
            self._insert(db, attempt)
            self._refresh_card(db, attempt.question_id)

    def set_override(self, uid: str, override: str | None, rating: int) -> None:
        """Replace the grade of a stored attempt ("knew" / "didnt") and its rating; the card is rebuilt."""
        with self.transaction() as db:
            row = db.execute("SELECT question_id FROM attempts WHERE uid = ?", (uid,)).fetchone()
            if row is None:
                raise ProgressError(f"no attempt with id {uid} in {self.path}")
            db.execute("UPDATE attempts SET override = ?, rating = ? WHERE uid = ?", (override, rating, uid))
            self._refresh_card(db, row["question_id"])

    def set_second_opinion(self, uid: str, opinion: dict[str, str]) -> None:
        """Keep an outside judge's opinion with a stored attempt; its grade, rating and card are left alone."""
        with self.transaction() as db:
            cursor = db.execute("UPDATE attempts SET second_opinion = ? WHERE uid = ?", (json.dumps(opinion), uid))
            if cursor.rowcount != 1:
                raise ProgressError(f"no attempt with id {uid} in {self.path}")

    def merge(self, sessions: Iterable[Session], attempts: Iterable[tuple[Attempt, str | None]]) -> tuple[int, int]:
        """Add the sessions and attempts not stored yet (matched by uid), in one transaction.

        Each attempt comes with its session's uid (its ``session_id`` is ignored: ids are local to a file).
        Returns (attempts added, sessions added); the cards of the questions touched are rebuilt.
        """
        with self.transaction() as db:
            sessions_added = 0
            for s in sessions:
                cursor = db.execute(
                    "INSERT OR IGNORE INTO sessions (uid, started_at, ended_at, filters) VALUES (?, ?, ?, ?)",
                    (
                        s.uid,
                        utc(s.started_at).isoformat(),
                        utc(s.ended_at).isoformat() if s.ended_at else None,
                        json.dumps(s.filters, sort_keys=True),
                    ),
                )
                sessions_added += cursor.rowcount
            local_id = {r["uid"]: r["id"] for r in db.execute("SELECT uid, id FROM sessions")}
            touched: set[str] = set()
            attempts_added = 0
            for attempt, session_uid in attempts:
                linked = dataclasses.replace(attempt, session_id=local_id.get(session_uid) if session_uid else None)
                if self._insert(db, linked):
                    attempts_added += 1
                    touched.add(attempt.question_id)
            for question_id in touched:
                self._refresh_card(db, question_id)
        return attempts_added, sessions_added

    def _insert(self, db: sqlite3.Connection, a: Attempt) -> bool:
        cursor = db.execute(
            "INSERT OR IGNORE INTO attempts (uid, question_id, at, answer, verdict, score, rating, cold, hint_used,"
            " override, seconds, session_id, why, second_opinion) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                a.uid,
                a.question_id,
                utc(a.at).isoformat(),
                a.answer,
                a.verdict,
                a.score,
                a.rating,
                int(a.cold),
                int(a.hint_used),
                a.override,
                a.seconds,
                a.session_id,
                json.dumps(a.why) if a.why is not None else None,
                json.dumps(a.second_opinion) if a.second_opinion is not None else None,
            ),
        )
        return cursor.rowcount == 1

    def _refresh_card(self, db: sqlite3.Connection, question_id: str) -> None:
        """Rebuild a question's card by replaying its attempts (a handful per question: cheap and exact)."""
        rows = db.execute("SELECT at, rating FROM attempts WHERE question_id = ?", (question_id,)).fetchall()
        try:
            card = self.scheduler.replay(question_id, ((datetime.fromisoformat(r[0]), Rating(r[1])) for r in rows))
        except OverflowError:
            raise ProgressError(f"attempts at {question_id!r} are dated too far in the future to schedule") from None
        if card is None:
            db.execute("DELETE FROM cards WHERE question_id = ?", (question_id,))
            return
        db.execute(
            "INSERT INTO cards (question_id, card, due) VALUES (?, ?, ?)"
            " ON CONFLICT (question_id) DO UPDATE SET card = excluded.card, due = excluded.due",
            (question_id, card.to_json(), utc(card.due).isoformat()),
        )

    def attempts(self, question_id: str | None = None) -> list[Attempt]:
        """Attempts oldest first (all, or one question's)."""
        if question_id is None:
            rows = self._db.execute("SELECT * FROM attempts ORDER BY at, id").fetchall()
        else:
            sql = "SELECT * FROM attempts WHERE question_id = ? ORDER BY at, id"
            rows = self._db.execute(sql, (question_id,)).fetchall()
        return [_attempt(r) for r in rows]

    def tried_in_session(self, session_id: int, question_id: str) -> bool:
        """Whether the question was already attempted in this session (a second try is not cold)."""
        sql = "SELECT 1 FROM attempts WHERE session_id = ? AND question_id = ? LIMIT 1"
        return self._db.execute(sql, (session_id, question_id)).fetchone() is not None

    def cards(self) -> dict[str, Card]:
        """The FSRS card of every question attempted at least once."""
        rows = self._db.execute("SELECT question_id, card FROM cards").fetchall()
        return {r["question_id"]: Card.from_json(r["card"]) for r in rows}
