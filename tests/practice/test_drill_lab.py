"""The drill's result card names the lab experiment that answers the question: the command, and the figure a run left
in ./lab-results (none before a run) or in the folder given with --lab-dir."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tfdojo.cli import app

runner = CliRunner()


def _idk(question_id: str, data: Path, *options: str) -> str:
    args = ["drill", "--id", question_id, "--no-timer", "--data-dir", str(data), *options]
    result = runner.invoke(app, args, input=":idk\n\n")
    assert result.exit_code == 0, result.output
    return result.stdout


def test_result_card_says_run_it_and_where_the_figure_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    before = _idk("kv-cache-llama2-7b-4k", tmp_path / "data")
    assert "Run it: tfdojo lab run kv-cache-heads" in before and "figure:" not in before
    (tmp_path / "lab-results").mkdir()
    (tmp_path / "lab-results" / "kv-cache-heads.png").write_bytes(b"\x89PNG")
    after = _idk("kv-cache-llama2-7b-4k", tmp_path / "data")
    assert "Run it: tfdojo lab run kv-cache-heads · figure: lab-results/kv-cache-heads.png" in after
    assert before.index("model answer") < before.index("Run it")


def test_lab_dir_points_the_drill_at_another_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for folder in ("lab-results", "elsewhere"):  # a figure in both: only the chosen folder's is shown
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "kv-cache-heads.png").write_bytes(b"\x89PNG")
    shown = _idk("kv-cache-llama2-7b-4k", tmp_path / "data", "--lab-dir", "elsewhere")
    assert "Run it: tfdojo lab run kv-cache-heads · figure: elsewhere/kv-cache-heads.png" in shown
    assert "lab-results/" not in shown
    (tmp_path / "a-file").write_text("not a folder")
    refused = runner.invoke(app, ["drill", "--lab-dir", "a-file", "--data-dir", str(tmp_path / "data")])
    assert refused.exit_code == 2 and "is a file" in refused.output
