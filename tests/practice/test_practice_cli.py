"""The practice commands through Typer's CliRunner on a temporary data folder and a small bank."""

import json
from types import SimpleNamespace

import pytest
from drill_bank import write_bank
from typer.testing import CliRunner

from tfdojo.cli import app
from tfdojo.practice.code import load_exercise
from tfdojo.practice.store import FILE_NAME, ProgressStore

runner = CliRunner()


@pytest.fixture
def dirs(tmp_path):
    bank = tmp_path / "bank"
    write_bank(bank)
    return ["--data-dir", str(tmp_path / "data"), "--bank", str(bank)], tmp_path / "data"


def _run(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def _attempts(data):
    with ProgressStore(data / FILE_NAME) as store:
        return store.attempts()


def test_drill_records_a_numeric_answer_after_an_unreadable_one(dirs):
    opts, data = dirs
    result = _run("drill", "--type", "numeric", "--no-timer", *opts, input="no idea\n2.5 GiB\nk\n")
    assert result.exit_code == 0, result.output
    assert "found" not in result.stdout and "no number found" in result.stderr  # the retry message
    assert "correct" in result.stdout and "2 · 80 · 8 · 128" in result.stdout  # grade with its derivation
    assert "model answer" in result.stdout
    (attempt,) = _attempts(data)
    assert (attempt.question_id, attempt.answer, attempt.verdict, attempt.override) == (
        "kv-cache-70b",
        "2.5 GiB",
        "correct",
        "knew",
    )


def test_drill_free_text_reads_lines_until_an_empty_one(dirs, monkeypatch):
    seen = []

    def stub(rubric, answer):
        seen.append(answer)
        return SimpleNamespace(verdict="partial", score=0.5, feedback="stub feedback")  # what the drill reads

    monkeypatch.setattr("tfdojo.practice.grading.free_text.grade_free_text", stub)
    opts, data = dirs
    script = ":hint\nfirst line\nsecond line\n\nd\n:quit\n"
    result = _run("drill", "--section", "attention-maths", "--type", "conceptual", "--no-timer", *opts, input=script)
    assert result.exit_code == 0, result.output
    assert "hint:" in result.stdout and "first point" in result.stdout
    assert seen == ["first line\nsecond line"]
    (attempt,) = _attempts(data)
    assert attempt.hint_used and not attempt.cold and attempt.override == "didnt"


def test_progress_json_counts_after_a_drill(dirs):
    opts, _ = dirs
    _run("drill", "--type", "numeric", "--no-timer", *opts, input="2.5 GiB\n\n")
    result = _run("progress", "--json", *opts)
    assert result.exit_code == 0, result.output
    counters = json.loads(result.stdout)
    assert {k: counters[k] for k in ("questions", "practiced", "cold", "mastered", "attempts")} == {
        "questions": 4,
        "practiced": 1,
        "cold": 1,
        "mastered": 0,
        "attempts": 1,
    }
    assert counters["grill"] == {"questions": 2, "cold": 1, "readiness": "1 of 2 cold"}
    assert [d["attempts"] for d in counters["history"]] == [1]


def _line(text, start):
    (line,) = [row for row in text.splitlines() if row.strip("│ ").startswith(start)]
    return line


def _cells(table, row):
    return [cell.strip() for cell in _line(table, row).split("│")[2:-1]]


def test_map_checklist_and_progress_render(dirs):
    opts, _ = dirs
    _run("drill", "--type", "numeric", "--no-timer", *opts, input="2.5 GiB\n\n")
    mapped = _run("map", *opts)
    assert mapped.exit_code == 0
    # columns: coding, conceptual, numeric, system-design
    assert _cells(mapped.stdout, "Inference and serving") == ["·", "·", "1/1", "·"]
    assert _cells(mapped.stdout, "Attention maths") == ["0/1", "0/1", "·", "·"]
    assert _cells(mapped.stdout, "all") == ["0/1", "0/1", "1/1", "0/1"]
    checked = _run("checklist", *opts)
    assert checked.exit_code == 0 and "1 of 2 cold" in checked.stdout
    assert "cold" in _line(checked.stdout, "✔  kv-cache-70b") and "new" in _line(checked.stdout, "○  why-scale-scores")
    assert "write-softmax" not in checked.stdout  # not a grill question
    shown = _run("progress", *opts)
    assert shown.exit_code == 0 and "practiced 1 of 4" in shown.stdout and "1 of 2 cold" in shown.stdout


def test_export_import_and_anki(dirs, tmp_path):
    opts, _ = dirs
    _run("drill", "--type", "numeric", "--no-timer", *opts, input="2.5 GiB\n\n")
    file = tmp_path / "progress.json"
    assert _run("export", file, *opts).exit_code == 0
    other = ["--data-dir", str(tmp_path / "other"), *opts[2:]]  # the same bank
    first = _run("import", file, *other)
    assert first.exit_code == 0 and "imported 1 attempts and 1 sessions" in first.stdout
    again = _run("import", file, *other)
    assert "imported 0 attempts" in again.stdout and "1 attempts were already here" in again.stdout
    deck = tmp_path / "deck.apkg"
    assert _run("export", "--anki", deck, *opts).exit_code == 0 and deck.stat().st_size > 0


@pytest.mark.parametrize(
    ("setup", "args", "message"),
    [
        ("corrupt", ["progress"], "move it aside"),
        ("bad-json", ["import"], "not a JSON file"),
        (None, ["drill", "--section", "nonsense"], "--section 'nonsense' is not one of"),
    ],
)
def test_errors_are_one_line_and_exit_1(dirs, tmp_path, setup, args, message):
    opts, data = dirs
    if setup == "corrupt":
        data.mkdir()
        (data / FILE_NAME).write_bytes(b"garbage" * 1000)
    if setup == "bad-json":
        (tmp_path / "bad.json").write_text("{oops")
        args = [*args, str(tmp_path / "bad.json")]
    result = _run(*args, *opts)
    assert result.exit_code == 1
    said = " ".join(result.stderr.split())  # Rich wraps the one message at the console width
    assert said.startswith("error: ") and said.count("error:") == 1 and message in said
    assert "Traceback" not in result.output


def test_drill_coding_copies_the_starter_and_grades_the_file(tmp_path, monkeypatch):
    bank = tmp_path / "bank"
    write_bank(bank)
    toml = bank / "drill.toml"
    toml.write_text(toml.read_text().replace("write-softmax", "causal-mask"))  # a bundled exercise
    graded = []

    def stub(exercise_id, source):
        graded.append((exercise_id, source))
        return SimpleNamespace(passed=False, feedback="0/5 hidden tests pass")  # what the drill reads

    monkeypatch.setattr("tfdojo.practice.code.grade_code", stub)
    data = tmp_path / "data"
    args = ["drill", "--type", "coding", "--no-timer", "--data-dir", data, "--bank", bank]
    result = _run(*args, input=f"{tmp_path / 'missing.py'}\n\n\n")  # a wrong path, then Enter = the work copy
    assert result.exit_code == 0, result.output
    assert "cannot read your solution file" in result.stderr
    copy = data / "work" / "causal-mask.py"
    assert copy.read_text() == load_exercise("causal-mask").starter
    assert graded == [("causal-mask", copy.read_text())]
    (attempt,) = _attempts(data)
    assert attempt.verdict == "incorrect" and attempt.answer == copy.read_text()
