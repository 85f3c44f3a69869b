"""`tfdojo history` shows the judge's second opinion (``--judge``, store v4) beside the grade when an attempt has one:
its verdict in the list, with its reason and model for one question; no column when no attempt has one."""

from datetime import UTC, datetime

from drill_bank import write_bank
from typer.testing import CliRunner

from tfdojo.cli import app
from tfdojo.practice.store import FILE_NAME, Attempt, ProgressStore

runner = CliRunner()
OPINION = {
    "verdict": "correct",
    "reason": "It names [bold]keys and values[/bold].",  # markup in a reply is printed as text
    "model": "judge-a",
    "endpoint": "http://127.0.0.1:8080/v1",
}


def _history(tmp_path, *args):
    opts = ["--data-dir", str(tmp_path / "data"), "--bank", str(tmp_path / "bank")]
    result = runner.invoke(app, ["history", *args, *opts], env={"COLUMNS": "250"})
    assert result.exit_code == 0, result.output
    return " ".join(result.stdout.split())


def test_history_shows_the_second_opinion_beside_the_grade(tmp_path):
    write_bank(tmp_path / "bank")
    (tmp_path / "data").mkdir()
    with ProgressStore(tmp_path / "data" / FILE_NAME) as store:
        store.record(Attempt("kv-cache-70b", datetime(2026, 1, 1, tzinfo=UTC), "2.5 GiB", "correct", 1.0, 3, uid="n"))
        assert "second opinion" not in _history(tmp_path)  # nothing judged yet: no empty column
        store.record(Attempt("why-scale-scores", datetime(2026, 1, 2, tzinfo=UTC), "my answer", "incorrect", 0.2, 1,
                             uid="j"))  # fmt: skip
        store.set_second_opinion("j", OPINION)
    listed = _history(tmp_path)
    assert "second opinion" in listed
    assert "why-scale-scores │ incorrect │ 0.20 │ 0:00 │ my answer │ correct │" in listed
    assert "kv-cache-70b │ correct │ 1.00 │ 0:00 │ 2.5 GiB │ │" in listed  # not judged: an empty cell
    one = _history(tmp_path, "why-scale-scores")
    assert "incorrect" in one and "correct — It names [bold]keys and values[/bold]. (judge-a)" in one
