"""The progress store: migrations from a v1 file, counters on a scripted history, export/import, durability."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from drill_bank import write_bank
from fsrs import Rating

from tfdojo.errors import ProgressError
from tfdojo.practice.counters import count, daily_history, question_states
from tfdojo.practice.store import FILE_NAME, Attempt, ProgressStore, data_dir
from tfdojo.practice.transfer import export_progress, import_progress, read_progress_file

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)

# The v1 layout, written out by hand as an older tfdojo left it.
V1_SCHEMA = """
CREATE TABLE sessions (id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, ended_at TEXT,
                       filters TEXT NOT NULL DEFAULT '{}');
CREATE TABLE attempts (id INTEGER PRIMARY KEY, question_id TEXT NOT NULL, at TEXT NOT NULL, answer TEXT NOT NULL,
                       verdict TEXT NOT NULL, score REAL NOT NULL, rating INTEGER NOT NULL, cold INTEGER NOT NULL,
                       hint_used INTEGER NOT NULL, override TEXT, seconds REAL NOT NULL,
                       session_id INTEGER REFERENCES sessions(id));
CREATE INDEX attempts_by_question ON attempts (question_id, at);
CREATE TABLE cards (question_id TEXT PRIMARY KEY, card TEXT NOT NULL, due TEXT NOT NULL);
INSERT INTO sessions (started_at) VALUES ('2025-01-01T10:00:00+00:00');
INSERT INTO attempts (question_id, at, answer, verdict, score, rating, cold, hint_used, seconds, session_id)
VALUES ('q1', '2025-01-01T10:01:00+00:00', 'first', 'correct', 1.0, 3, 1, 0, 40.0, 1),
       ('q2', '2025-01-01T10:05:00+00:00', 'second', 'incorrect', 0.0, 1, 1, 0, 90.0, 1);
PRAGMA user_version = 1;
"""


def _attempt(qid, at, verdict="correct", rating=Rating.Good, **kw):
    return Attempt(qid, at, f"answer to {qid}", verdict, 1.0 if verdict == "correct" else 0.0, int(rating), **kw)


def test_a_new_store_is_at_the_latest_schema_in_wal_mode(tmp_path):
    with ProgressStore(tmp_path / "p.sqlite3") as store:
        assert store.schema_version == 4
    with sqlite3.connect(tmp_path / "p.sqlite3") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_migrates_a_v1_file_keeping_its_attempts(tmp_path):
    path = tmp_path / FILE_NAME
    with sqlite3.connect(path) as db:
        db.executescript(V1_SCHEMA)
    with ProgressStore(path) as store:
        assert store.schema_version == 4
        old = store.attempts()
        assert [(a.question_id, a.answer, a.verdict, a.seconds) for a in old] == [
            ("q1", "first", "correct", 40.0),
            ("q2", "second", "incorrect", 90.0),
        ]
        uids = {a.uid for a in old} | {s.uid for s in store.sessions()}
        assert len(uids) == 3 and all(len(u) == 32 for u in uids)  # v2 gave every row its own id
        store.record(_attempt("q1", T0))
        assert len(store.attempts("q1")) == 2


def test_a_corrupt_file_is_reported_and_left_alone(tmp_path):
    path = tmp_path / FILE_NAME
    garbage = b"this is not a database" * 200
    path.write_bytes(garbage)
    with pytest.raises(ProgressError, match="move it aside") as e:
        ProgressStore(path)
    assert str(path) in str(e.value)
    assert path.read_bytes() == garbage


def test_a_file_from_a_newer_tfdojo_is_refused(tmp_path):
    path = tmp_path / FILE_NAME
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA user_version = 99")
    with pytest.raises(ProgressError, match="newer"):
        ProgressStore(path)


def test_data_dir_flag_beats_env_beats_platform_default(tmp_path, monkeypatch):
    monkeypatch.setenv("TFDOJO_HOME", str(tmp_path / "env"))
    assert data_dir(tmp_path / "flag") == tmp_path / "flag"
    assert data_dir() == tmp_path / "env"
    monkeypatch.delenv("TFDOJO_HOME")
    assert data_dir().name == "tfdojo"


def _scripted_history(store):
    """Three sessions a week apart; the expected counters are worked out in the test below."""
    s1 = store.start_session({}, T0)
    store.record(_attempt("why-scale-scores", T0, cold=True, session_id=s1))  # grill: right cold
    store.record(_attempt("kv-cache-70b", T0, "incorrect", Rating.Again, cold=True, session_id=s1))  # grill: wrong
    store.record(_attempt("kv-cache-70b", T0 + timedelta(minutes=5), session_id=s1))  # right, second try: not cold
    store.record(_attempt("write-softmax", T0, cold=True, override="didnt", session_id=s1))  # overridden: not right
    store.record(_attempt("design-serving", T0, hint_used=True, session_id=s1))  # right with a hint: not cold
    for week in (1, 2):
        s = store.start_session({}, T0 + timedelta(weeks=week))
        store.record(_attempt("why-scale-scores", T0 + timedelta(weeks=week), cold=True, session_id=s))


def test_counters_on_a_scripted_history(tmp_path):
    bank = write_bank(tmp_path / "bank")
    with ProgressStore(tmp_path / FILE_NAME) as store:
        _scripted_history(store)
        now = T0 + timedelta(weeks=2, hours=1)
        attempts = store.attempts()
        states = question_states([q.id for q in bank], attempts, store.cards(), now)
    c = count(states, [q.id for q in bank.grill])
    assert (c.questions, c.practiced, c.cold, c.mastered) == (4, 4, 1, 1)
    assert states["why-scale-scores"].mastered  # three cold passes in a row
    assert not states["kv-cache-70b"].cold and states["kv-cache-70b"].practiced
    assert c.grill_readiness == "1 of 2 cold"
    assert [(d.attempts, d.right) for d in daily_history(attempts)] == [(5, 3), (1, 1), (1, 1)]


def test_due_follows_the_card(tmp_path):
    with ProgressStore(tmp_path / FILE_NAME) as store:
        store.record(_attempt("missed", T0, "incorrect", Rating.Again, cold=True))  # Again: back in 1 minute
        store.record(_attempt("easy", T0, rating=Rating.Easy, cold=True))  # Easy: days away
        states = question_states(["missed", "easy", "new"], store.attempts(), store.cards(), T0 + timedelta(hours=1))
    assert [states[q].due for q in ("missed", "easy", "new")] == [True, False, False]


def test_override_rebuilds_the_card(tmp_path):
    with ProgressStore(tmp_path / FILE_NAME) as store:
        attempt = _attempt("q", T0, "incorrect", Rating.Again, cold=True)
        store.record(attempt)
        assert store.cards()["q"].due == T0 + timedelta(minutes=1)
        store.set_override(attempt.uid, "knew", int(Rating.Good))
        assert store.cards()["q"].due == T0 + timedelta(minutes=10)  # as if rated Good
        assert store.attempts()[0].override == "knew"


def test_export_import_round_trip_and_merge_without_duplicates(tmp_path):
    with ProgressStore(tmp_path / "a" / FILE_NAME) as a:
        _scripted_history(a)
        exported = export_progress(a, T0)
    file = tmp_path / "progress.json"
    file.write_text(json.dumps(exported))
    with ProgressStore(tmp_path / "b" / FILE_NAME) as b:
        assert import_progress(b, read_progress_file(file)) == (7, 3)
        assert export_progress(b, T0) == exported  # same sessions, attempts and (rebuilt) cards
        assert import_progress(b, read_progress_file(file)) == (0, 0)
        b.record(_attempt("extra", T0 + timedelta(days=30)))
        file.write_text(json.dumps(export_progress(b, T0)))
    with ProgressStore(tmp_path / "a" / FILE_NAME) as a:
        assert import_progress(a, read_progress_file(file)) == (1, 0)  # only the new attempt
        assert len(a.attempts()) == 8


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not a JSON file"),
        ('{"format": "something-else"}', "not a tfdojo progress export"),
        (None, "attempts.0.verdict"),  # a valid export with one field removed
    ],
)
def test_a_malformed_import_is_refused_and_writes_nothing(tmp_path, content, message):
    with ProgressStore(tmp_path / "a" / FILE_NAME) as a:
        _scripted_history(a)
        exported = export_progress(a, T0)
    del exported["attempts"][0]["verdict"]
    file = tmp_path / "bad.json"
    file.write_text(content if content is not None else json.dumps(exported))
    with ProgressStore(tmp_path / "b" / FILE_NAME) as b:
        with pytest.raises(ProgressError, match=message):
            import_progress(b, read_progress_file(file))
        assert b.attempts() == [] and b.sessions() == []


CHILD = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from tfdojo.practice.store import Attempt, ProgressStore

store = ProgressStore(Path(sys.argv[1]))
session = store.start_session({}, datetime.now(UTC))
for i in range(int(sys.argv[2])):
    store.record(Attempt(f"q{i % 3}", datetime.now(UTC), f"answer {i}", "correct", 1.0, 3, session_id=session))
print("recorded", flush=True)
sys.stdin.read()  # hold the database open until killed
"""


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_sigkill_right_after_submitting_loses_nothing(tmp_path):
    path = tmp_path / FILE_NAME
    n = 25
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout.readline().strip() == "recorded"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL
    with ProgressStore(path) as store:
        answers = [a.answer for a in store.attempts()]
        assert sorted(answers) == sorted(f"answer {i}" for i in range(n))
        assert set(store.cards()) == {"q0", "q1", "q2"}


def test_read_only_opening_migrates_in_memory_and_leaves_the_file_alone(tmp_path):
    path = tmp_path / FILE_NAME
    with sqlite3.connect(path) as db:
        db.executescript(V1_SCHEMA)
    before = path.read_bytes()
    with ProgressStore(path, read_only=True) as store:
        assert [a.answer for a in store.attempts()] == ["first", "second"] and store.schema_version == 4
    assert path.read_bytes() == before  # still v1, untouched
    with ProgressStore(tmp_path / "missing" / FILE_NAME, read_only=True) as store:
        assert store.attempts() == []
    assert not (tmp_path / "missing").exists()  # reading creates nothing


def test_an_attempt_too_far_in_the_future_to_schedule_is_refused(tmp_path):
    with ProgressStore(tmp_path / FILE_NAME) as store:
        with pytest.raises(ProgressError, match="too far in the future"):
            store.record(_attempt("q", datetime(9999, 12, 31, tzinfo=UTC), rating=Rating.Easy))  # due in 10000 AD
        assert store.attempts() == []
