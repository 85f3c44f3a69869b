"""The web's "Run it": a question an experiment answers shows `tfdojo lab run NAME` and the figure of the last run,
served from the lab folder by catalog name only (a traversal or an uncatalogued file is a 404); claims are escaped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from web_live import Live, free_port, serve

from tfdojo.app.config import WebConfig
from tfdojo.lab import experiments_for
from tfdojo.lab.experiment import Experiment

PNG = b"\x89PNG\r\n\x1a\n" + b"figure bytes"  # the server sends the file as it is; it need not decode


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Live]:
    """A trainer whose lab folder holds a figure for sqrt-d-scaling only, with a secret PNG beside the folder."""
    folder = tmp_path / "lab"
    folder.mkdir()
    (folder / "sqrt-d-scaling.png").write_bytes(PNG)
    (folder / "not-an-experiment.png").write_bytes(b"\x89PNGstray")
    (tmp_path / "secret.png").write_bytes(b"\x89PNGsecret")
    with serve(WebConfig(port=free_port(), data_dir=tmp_path / "data", lab_dir=folder)) as server:
        yield server


def test_card_shows_the_command_and_the_figure_of_the_last_run(lab: Live) -> None:
    page = lab.get("/card/attention-formula-walkthrough").text
    assert "Run it: <code>tfdojo lab run sqrt-d-scaling</code>" in page
    assert '<img src="/lab/sqrt-d-scaling.png"' in page
    figure = lab.get("/lab/sqrt-d-scaling.png")
    assert figure.status == 200 and figure.body == PNG
    assert figure.headers["content-type"] == "image/png"


def test_card_without_a_run_shows_the_command_but_no_image(lab: Live) -> None:
    page = lab.get("/card/kv-cache-purpose").text
    assert "tfdojo lab run kv-cache-heads" in page and "/lab/kv-cache-heads.png" not in page
    assert lab.get("/lab/kv-cache-heads.png").status == 404
    unanswered = next(q.id for q in lab.trainer.bank if not experiments_for(q.id))
    assert "Run it" not in lab.get(f"/card/{unanswered}").text


@pytest.mark.parametrize("path", ["/lab/..%2Fsecret.png", "/lab/%2E%2E%2Fsecret.png", "/lab/not-an-experiment.png"])
def test_only_catalogued_figures_are_served(lab: Live, path: str) -> None:
    reply = lab.get(path)
    assert reply.status == 404 and b"secret" not in reply.body and b"stray" not in reply.body


def test_the_result_page_of_a_timed_answer_shows_run_it(lab: Live) -> None:
    start = lab.post("/session", {"question_id": "kv-cache-llama2-7b-4k"})
    key = start.headers["location"]
    graded = lab.post(f"{key}/answer", {"question_id": "kv-cache-llama2-7b-4k", "answer": "2 GiB"})
    assert graded.status == 303, graded.text
    page = lab.get(graded.headers["location"]).text
    assert 'id="verdict"' in page and "tfdojo lab run kv-cache-heads" in page


def test_claim_text_reaches_the_page_escaped(lab: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    script = "<script>alert(1)</script>"
    hostile = Experiment("sqrt-d-scaling", "sqrt_d", script, "m", ("attention-formula-walkthrough",))
    monkeypatch.setattr("tfdojo.lab.links.experiments_for", lambda _qid: [hostile])
    page = lab.get("/card/attention-formula-walkthrough").text
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
