"""`tfdojo lab`: listing, running one experiment to JSON + PNG, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from tfdojo.cli import app
from tfdojo.lab import EXPERIMENTS, experiments_for
from tfdojo.practice.loader import load_bank

runner = CliRunner()


def test_list_json_names_every_experiment() -> None:
    result = runner.invoke(app, ["lab", "list", "--json"])
    assert result.exit_code == 0
    assert [r["name"] for r in json.loads(result.stdout)] == [e.name for e in EXPERIMENTS]


def test_run_writes_json_and_png(tmp_path: Path) -> None:
    result = runner.invoke(app, ["lab", "run", "sqrt-d-scaling", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "sqrt-d-scaling.json").read_text())
    assert data["holds"] is True and data["claim"] and data["questions"]
    assert (tmp_path / "sqrt-d-scaling.png").read_bytes()[:4] == b"\x89PNG"


def test_unknown_experiment_is_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["lab", "run", "no-such", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "no lab experiment called 'no-such'" in result.output
    assert "Traceback" not in result.output


def test_every_linked_question_exists_in_the_bank() -> None:
    bank_ids = {q.id for q in load_bank()}
    for e in EXPERIMENTS:
        assert set(e.questions) <= bank_ids, e.name
    assert [e.name for e in experiments_for("kv-cache-purpose")] == ["kv-cache-heads"]
