"""Issue 9's crashes, each now a one-line error: read-only database, hostile or impossible imports, Ctrl-C."""

import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from drill_bank import write_bank
from typer.testing import CliRunner

import tfdojo.practice.history  # noqa: F401 - imported before the test drops privileges
import tfdojo.practice.transfer  # noqa: F401
from tfdojo.cli import app
from tfdojo.practice.line_editor import Reply
from tfdojo.practice.store import FILE_NAME, ProgressStore

runner = CliRunner()


def _run(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input)


def _one_line_error(result, message):
    said = " ".join(result.stderr.split())  # Rich wraps the one message at the console width
    assert result.exit_code == 1, result.output
    assert said.startswith("error: ") and said.count("error:") == 1 and message in said, said
    assert "Traceback" not in result.output


@pytest.fixture
def home():
    """A data folder others may enter (pytest's tmp_path is private to root), with one drill in it."""
    top = Path(tempfile.mkdtemp())
    top.chmod(0o755)
    bank = top / "bank"
    write_bank(bank)
    opts = ["--data-dir", str(top / "data"), "--bank", str(bank)]
    assert _run("drill", "--type", "numeric", "--no-timer", *opts, input="2.5 GiB\n\n").exit_code == 0
    yield top, opts
    for path in (top / "data", top / "data" / FILE_NAME):
        if path.exists():
            path.chmod(0o755)
    shutil.rmtree(top)


@contextmanager
def read_only(folder):
    """The progress file and its folder read-only, as an ordinary user sees them (root drops to nobody)."""
    (folder / FILE_NAME).chmod(0o444)
    folder.chmod(0o555)
    root = os.geteuid() == 0
    if root:
        try:
            os.seteuid(65534)
        except PermissionError:
            pytest.skip("running as root without CAP_SETUID: permissions cannot make a file read-only")
    try:
        yield
    finally:
        if root:
            os.seteuid(0)


def test_a_read_only_database_is_read_by_readers_and_refused_clearly_by_writers(home, tmp_path):
    top, opts = home
    exported = top / "export.json"
    assert _run("export", exported, *opts).exit_code == 0
    with read_only(top / "data"):
        shown = _run("progress", "--json", *opts)
        mapped = _run("map", *opts)
        past = _run("history", *opts)
        drilled = _run("drill", "--no-timer", *opts, input=":quit\n")
        imported = _run("import", exported, *opts)
    assert shown.exit_code == 0 and json.loads(shown.stdout)["attempts"] == 1
    assert mapped.exit_code == 0 and past.exit_code == 0 and "kv-cache-70b" in past.stdout
    for result in (drilled, imported):
        _one_line_error(result, f"the progress database {top / 'data' / FILE_NAME} is read-only")
    with ProgressStore(top / "data" / FILE_NAME) as store:
        assert len(store.attempts()) == 1


def _export(home):
    top, opts = home
    path = top / "export.json"
    assert _run("export", path, *opts).exit_code == 0
    return path, json.loads(path.read_text())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["attempts"][0].update(at="9999-12-31T00:00:00+00:00"), "is dated 9999-12-31T00:00:00+00:00"),
        (lambda d: d["attempts"][0].update(question_id="no-such-question"), "'no-such-question'"),
        (lambda d: d["attempts"][0].update(verdict="<script>alert(1)</script>"), "attempts.0.verdict"),
        (lambda d: d["attempts"][0].update(score=float("nan")), "attempts.0.score"),
        (lambda d: d.update(version=99), "made by a newer tfdojo"),
    ],
)
def test_an_impossible_import_is_refused_with_a_message(home, change, message):
    top, opts = home
    path, document = _export(home)
    change(document)
    path.write_text(json.dumps(document))  # NaN is written as the bare word NaN, which json.loads accepts
    other = ["--data-dir", str(top / "other"), *opts[2:]]
    _one_line_error(_run("import", path, *other), message)
    with ProgressStore(top / "other" / FILE_NAME) as store:
        assert store.attempts() == []


def test_deeply_nested_json_is_refused(home):
    top, opts = home
    path = top / "nested.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    _one_line_error(_run("import", path, *opts), "nested too deeply")


class Scripted:
    """A reader that returns scripted replies and raises what it is given (Ctrl-C is KeyboardInterrupt)."""

    def __init__(self, replies):
        self.replies = list(replies)

    def read(self, label, multiline, deadline, hints, default=""):
        reply = self.replies.pop(0)
        if isinstance(reply, BaseException):
            raise reply
        return reply


def test_ctrl_c_at_the_override_prompt_reports_the_saved_attempt(home, monkeypatch):
    top, opts = home
    monkeypatch.setattr("tfdojo.practice.cli.make_reader", lambda: Scripted([Reply("2.5 GiB"), KeyboardInterrupt()]))
    result = _run("drill", "--type", "numeric", "--no-timer", *opts)
    assert result.exit_code == 0, result.output
    assert "1 answered, 1 right" in result.stdout and "0 answered" not in result.stdout
    with ProgressStore(top / "data" / FILE_NAME) as store:
        assert len(store.attempts()) == 2
