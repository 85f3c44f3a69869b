"""The drill as a candidate uses it (CliRunner, stub free-text grader): I don't know, --id, the why, $EDITOR, the
answer cap, the summary, resuming, weakest-first, the three labels, coding statements, and `tfdojo history`."""

import json
import stat
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from drill_bank import write_bank
from fsrs import Rating
from typer.testing import CliRunner

from tfdojo.cli import app
from tfdojo.practice.code import load_exercise
from tfdojo.practice.counters import question_states
from tfdojo.practice.line_editor import Reply
from tfdojo.practice.session import Filters, pick_questions
from tfdojo.practice.store import FILE_NAME, Attempt, ProgressStore

runner = CliRunner()
WHY = {
    "shown": "partial",
    "points": [{"point": "first point", "status": "covered", "sentence": "my first sentence", "similarity": 0.81}],
    "misconceptions": [],
}


@pytest.fixture
def dirs(tmp_path):
    write_bank(tmp_path / "bank")
    return ["--data-dir", str(tmp_path / "data"), "--bank", str(tmp_path / "bank")], tmp_path / "data"


@pytest.fixture
def graded(monkeypatch):
    """The free-text grader replaced by one that says "uncertain", shown as partial, and remembers each answer."""
    seen = []

    def stub(rubric, answer):
        seen.append(answer)
        return SimpleNamespace(verdict="uncertain", shown="partial", score=0.5, feedback="stub", why=lambda: WHY)

    monkeypatch.setattr("tfdojo.practice.grading.free_text.grade_free_text", stub)
    return seen


def _run(*args, input=None, env=None):
    return runner.invoke(app, [str(a) for a in args], input=input, env=env)


def _attempts(data):
    with ProgressStore(data / FILE_NAME, read_only=True) as store:
        return store.attempts()


def test_i_dont_know_records_again(dirs):
    opts, data = dirs
    result = _run("drill", "--id", "kv-cache-70b", "--no-timer", *opts, input=":idk\n\n")
    assert result.exit_code == 0, result.output
    assert "model answer" in result.stdout and "1 answered, 0 right" in result.stdout
    (attempt,) = _attempts(data)
    assert (attempt.verdict, attempt.rating, attempt.answer) == ("incorrect", Rating.Again, "")


def test_id_asks_exactly_those_questions_and_refuses_unknown_ones(dirs, graded):
    opts, _ = dirs
    result = _run(
        "drill", "--id", "design-serving", "--id", "why-scale-scores", "--no-timer", *opts, input=":skip\n" * 2
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.index("design-serving") < result.stdout.index("why-scale-scores")
    assert "kv-cache-70b" not in result.stdout and "2 skipped" in result.stdout
    unknown = _run("drill", "--id", "nope", *opts)
    assert unknown.exit_code == 1 and "no question with id 'nope'" in unknown.stderr


def test_three_labels_the_why_and_the_summary(dirs, graded):
    opts, data = dirs
    script = "my first sentence\nand more\n\nw\n\n"
    result = _run("drill", "--id", "why-scale-scores", "--no-timer", *opts, input=script)
    assert result.exit_code == 0, result.output
    assert graded == ["my first sentence\nand more"]
    assert "uncertain" not in result.stdout and "partial" in result.stdout  # the label shown, flagged as unsure
    assert "why this grade" in result.stdout and "my first sentence" in result.stdout and "0.81" in result.stdout
    summary = " ".join(result.stdout[result.stdout.index("this session") :].split())
    assert "why-scale-scores" in summary and "1 answered, 0 right" in summary
    assert "readiness: grill 0 of 2 cold → 0 of 2 cold · practiced 0 → 1" in summary
    (attempt,) = _attempts(data)
    assert attempt.why == WHY


def test_editor_answers_and_the_answer_cap(dirs, graded, tmp_path):
    opts, _ = dirs
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "written in the editor\\n\\nsecond paragraph" > "$1"\n')
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    huge = "word " * 40_000  # 200 KB
    script = f"{huge}\n\n:edit\n\n\n"
    result = _run("drill", "--id", "why-scale-scores", "--no-timer", *opts, input=script, env={"EDITOR": str(editor)})
    assert result.exit_code == 0, result.output
    assert "your answer is 199,999 characters; the cap is 5,000" in " ".join(result.stderr.split())
    assert graded == ["written in the editor\n\nsecond paragraph"]  # a blank line inside it did not split it


def test_an_interrupted_drill_resumes_where_it_stopped(dirs, graded):
    opts, data = dirs
    first = _run("drill", "--section", "attention-maths", "--type", "conceptual", "--no-timer", *opts, input=":quit\n")
    assert first.exit_code == 0 and "1 question left" in first.stdout and "drill --resume" in first.stdout
    resumed = _run("drill", "--resume", "--no-timer", *opts, input="an answer\n\n\n")
    assert resumed.exit_code == 0, resumed.output
    assert "why-scale-scores" in resumed.stdout and " left:" not in resumed.stdout
    (attempt,) = _attempts(data)
    with ProgressStore(data / FILE_NAME, read_only=True) as store:
        first_session = store.session(attempt.session_id)
    assert first_session.filters["sections"] == ["attention-maths"] and first_session.ended_at is not None
    nothing = _run("drill", "--resume", *opts)
    assert nothing.exit_code == 1 and "no interrupted drill to resume" in nothing.stderr
    _run("drill", "--id", "kv-cache-70b", "--no-timer", *opts, input=":quit\n")
    fresh = _run("drill", "--id", "design-serving", "--no-timer", *opts, input=":skip\n")
    assert "the interrupted drill is left" in " ".join(fresh.stdout.split())  # a new drill gives the old one up
    assert _run("drill", "--resume", *opts).exit_code == 1


def test_weakest_first_orders_by_recall(tmp_path):
    bank = write_bank(tmp_path / "bank")
    t0 = datetime(2025, 3, 1, tzinfo=UTC)
    with ProgressStore(tmp_path / FILE_NAME) as store:
        store.record(Attempt("why-scale-scores", t0, "x", "correct", 1.0, int(Rating.Easy)))  # recalled well
        store.record(Attempt("design-serving", t0, "x", "incorrect", 0.0, int(Rating.Again)))  # forgotten soonest
        store.record(Attempt("write-softmax", t0, "x", "partial", 0.5, int(Rating.Hard)))
        now = t0 + timedelta(days=3)
        states = question_states([q.id for q in bank], store.attempts(), store.cards(), now)
    assert states["design-serving"].recall < states["write-softmax"].recall < states["why-scale-scores"].recall
    order = [q.id for q in pick_questions(bank, states, Filters(order="weakest"))]
    assert order == ["design-serving", "write-softmax", "why-scale-scores", "kv-cache-70b"]  # then the new one


@pytest.fixture
def coding(tmp_path, monkeypatch):
    """A bank whose coding question is the bundled causal-mask exercise, and a stub sandbox that keeps sources."""
    bank = tmp_path / "bank"
    write_bank(bank)
    toml = bank / "drill.toml"
    toml.write_text(toml.read_text().replace("write-softmax", "causal-mask"))
    graded = []

    def stub(exercise_id, source):
        graded.append(source)
        return SimpleNamespace(passed=False, feedback="0/5 hidden tests pass", tests=())

    monkeypatch.setattr("tfdojo.practice.code.grade_code", stub)
    return bank, graded


def test_a_coding_review_shows_the_statement_and_starts_fresh(tmp_path, coding):
    bank, graded = coding
    data = tmp_path / "data"
    (data / "work").mkdir(parents=True)
    (data / "work" / "causal-mask.py").write_text("an old answer that passed")
    result = _run("drill", "--id", "causal-mask", "--no-timer", "--data-dir", data, "--bank", bank, input="\n\n")
    assert result.exit_code == 0, result.output
    assert "Causal mask" in result.stdout and "masked_softmax" in result.stdout  # the exercise statement
    assert graded == [load_exercise("causal-mask").starter]  # the review starts from the starter, not old work
    assert (data / "work" / "causal-mask.previous.py").read_text() == "an old answer that passed"


def test_history_filters_and_json(dirs, graded):
    opts, _ = dirs
    _run("drill", "--id", "why-scale-scores", "--no-timer", *opts, input="my first sentence\n\nk\n")
    _run("drill", "--id", "kv-cache-70b", "--no-timer", *opts, input="2.5 GiB\n\n")
    listed = _run("history", *opts, env={"COLUMNS": "160"})
    assert listed.exit_code == 0 and "why-scale-scores" in listed.stdout and "kv-cache-70b" in listed.stdout
    only = json.loads(_run("history", "--section", "attention-maths", "--json", *opts).stdout)
    assert [a["question"] for a in only] == ["why-scale-scores"]
    assert only[0]["label"] == "correct" and only[0]["override"] == "knew" and only[0]["why"] == WHY
    numeric = json.loads(_run("history", "kv-cache-70b", "--json", *opts).stdout)
    assert numeric[0]["answer"] == "2.5 GiB" and numeric[0]["why"]["read"] == "2.5 GiB"
    assert "2 · 80 · 8 · 128" in numeric[0]["why"]["derivation"]


def test_progress_json_shows_labels_and_the_why(dirs, graded):
    opts, _ = dirs
    _run("drill", "--id", "why-scale-scores", "--no-timer", *opts, input="my first sentence\n\n\n")
    (recent,) = json.loads(_run("progress", "--json", *opts).stdout)["recent"]
    assert (recent["verdict"], recent["label"], recent["why"]) == ("uncertain", "partial", WHY)
    shown = _run("progress", *opts, env={"COLUMNS": "160"})
    assert "partial" in shown.stdout and "uncertain" not in shown.stdout


def test_edit_opens_the_working_copy_in_the_editor(tmp_path, coding):
    bank, graded = coding
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nprintf "def causal_mask(t, s): ...\\n" > "$1"\n')
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    args = ["drill", "--id", "causal-mask", "--no-timer", "--data-dir", tmp_path / "data", "--bank", bank]
    result = _run(*args, input=":edit\n\n\n", env={"EDITOR": str(editor)})
    assert result.exit_code == 0, result.output
    assert graded == ["def causal_mask(t, s): ...\n"]


def test_a_command_after_some_lines_keeps_them(dirs, graded):
    opts, data = dirs
    script = "first line\n:hint\nsecond line\n\n\n"
    result = _run("drill", "--id", "why-scale-scores", "--no-timer", *opts, input=script)
    assert result.exit_code == 0, result.output
    assert "hint:" in result.stdout and graded == ["first line\nsecond line"]
    (attempt,) = _attempts(data)
    assert attempt.hint_used and not attempt.cold


def test_the_editor_reads_a_command_on_the_last_line():
    from tfdojo.practice.line_editor import _reply

    assert _reply("my draft\nmore of it\n:hint") == Reply("my draft\nmore of it", ":hint")
    assert _reply(":QUIT ") == Reply("", ":quit")
    assert _reply("a :hint inside a line\n") == Reply("a :hint inside a line")
