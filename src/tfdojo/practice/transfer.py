"""Progress as a JSON file: export everything, import by merging (uids decide what is already there).

The file holds sessions and attempts (the history) and, for other tools, each question's FSRS card. Cards are
derived: import rebuilds them from the merged attempts. A file that is not valid JSON or not in this layout is
rejected whole, with the field at fault, before anything is written: unknown verdicts, scores that are not numbers
in [0, 1], attempts dated in the future, questions this bank does not have. A file in a newer format says so.
Version 2 added each attempt's ``why`` (the grader's evidence), version 3 its ``second_opinion`` (an outside
judge's advice, ``--judge``); older files are still read.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tfdojo.errors import ProgressError
from tfdojo.practice.store import Attempt, ProgressStore, Session

FORMAT = "tfdojo-progress"
VERSION = 3
VERDICTS = ("correct", "partial", "close", "incorrect", "uncertain")
CLOCK_SKEW = timedelta(days=1)  # an attempt may be this much later than the export (clocks of two machines)


class SessionRecord(BaseModel):
    """A session as exported."""

    model_config = ConfigDict(extra="forbid")

    uid: str = Field(min_length=1)
    started_at: datetime
    ended_at: datetime | None = None
    filters: dict[str, Any] = Field(default_factory=dict)


class OpinionRecord(BaseModel):
    """An outside judge's opinion of an attempt, as exported (advice shown beside the grade, never the grade)."""

    model_config = ConfigDict(extra="forbid")

    verdict: Literal["correct", "partial", "incorrect"]
    reason: str = Field(max_length=1000)
    model: str = Field(max_length=200)
    endpoint: str = Field(max_length=1000)


class AttemptRecord(BaseModel):
    """An attempt as exported; ``session`` is its session's uid."""

    model_config = ConfigDict(extra="forbid")

    uid: str = Field(min_length=1)
    question_id: str = Field(min_length=1)
    at: datetime
    answer: str
    verdict: Literal["correct", "partial", "close", "incorrect", "uncertain"]
    score: float = Field(ge=0, le=1, allow_inf_nan=False)
    rating: int = Field(ge=1, le=4)
    cold: bool
    hint_used: bool
    seconds: float = Field(ge=0, allow_inf_nan=False)
    override: Literal["knew", "didnt"] | None = None
    session: str | None = None
    why: Any = None
    second_opinion: OpinionRecord | None = None


class ProgressFile(BaseModel):
    """The whole export."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["tfdojo-progress"]
    version: Literal[1, 2, 3]
    exported_at: datetime
    sessions: list[SessionRecord]
    attempts: list[AttemptRecord]
    cards: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _sessions_exist(self) -> ProgressFile:
        """Every attempt's session is in the file."""
        known = {s.uid for s in self.sessions}
        missing = sorted({a.session for a in self.attempts if a.session and a.session not in known})
        if missing:
            raise ValueError(f"attempts refer to sessions not in the file: {missing[:3]}")
        return self


def export_progress(store: ProgressStore, now: datetime) -> dict[str, Any]:
    """Everything in the store as a JSON-ready dict."""
    sessions = store.sessions()
    uid_of = {s.id: s.uid for s in sessions}
    document = ProgressFile(
        format=FORMAT,
        version=VERSION,
        exported_at=now,
        sessions=[
            SessionRecord(uid=s.uid, started_at=s.started_at, ended_at=s.ended_at, filters=s.filters) for s in sessions
        ],
        attempts=[_record(a, uid_of.get(a.session_id)) for a in store.attempts()],
        cards={q: card.to_dict() for q, card in sorted(store.cards().items())},
    )
    return document.model_dump(mode="json")


def _record(attempt: Attempt, session_uid: str | None) -> AttemptRecord:
    """An attempt as exported: every field but the database's session id, which becomes the session's uid."""
    fields = {k: v for k, v in asdict(attempt).items() if k != "session_id"}
    return AttemptRecord(**fields, session=session_uid)


def read_progress_file(path: Path) -> ProgressFile:
    """Parse and validate an export; ProgressError names the file and what is wrong with it."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise ProgressError(f"cannot read {path}: {e}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ProgressError(f"{path} is not a JSON file ({e}); give a file written by `tfdojo export`") from None
    except RecursionError:
        raise ProgressError(f"{path} is nested too deeply to be a tfdojo progress export; nothing imported") from None
    version = raw.get("version") if isinstance(raw, dict) and raw.get("format") == FORMAT else None
    if isinstance(version, int) and version > VERSION:
        raise ProgressError(
            f"{path} was made by a newer tfdojo (export format v{version}; this one reads up to v{VERSION}); "
            "upgrade tfdojo to import it"
        )
    try:
        return ProgressFile.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in e.errors()[:3]
        )
        raise ProgressError(f"{path} is not a tfdojo progress export: {problems}; nothing was imported") from None


def check_document(document: ProgressFile, question_ids: Iterable[str], now: datetime, path: Path) -> None:
    """Refuse a file with attempts dated in the future or at questions this bank does not have."""
    future = [a for a in document.attempts if a.at > now + CLOCK_SKEW]
    if future:
        raise ProgressError(
            f"{path}: attempt {future[0].uid} is dated {future[0].at.isoformat()}, in the future; "
            "fix the date or the clock of the machine that made it; nothing was imported"
        )
    known = set(question_ids)
    unknown = sorted({a.question_id for a in document.attempts} - known)
    if unknown:
        listed = ", ".join(repr(q) for q in unknown[:3]) + (" …" if len(unknown) > 3 else "")
        raise ProgressError(
            f"{path} has attempts at {len(unknown)} questions not in this bank ({listed}); "
            "import it with the bank it was made with (--bank), or not at all; nothing was imported"
        )


def import_progress(store: ProgressStore, document: ProgressFile) -> tuple[int, int]:
    """Merge an export into the store; returns (attempts added, sessions added). Known uids are skipped."""
    sessions = [Session(0, s.uid, s.started_at, s.ended_at, s.filters) for s in document.sessions]
    attempts = [(Attempt(**a.model_dump(exclude={"session"})), a.session) for a in document.attempts]
    return store.merge(sessions, attempts)
