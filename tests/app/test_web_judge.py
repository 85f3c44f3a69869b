"""`tfdojo web --judge URL`: the result card shows a second opinion beside the grade, escaped, and never grades by it.

The offline grader is a stub (the grade is fixed), the judge a stub OpenAI server (tests/judge_stub.py) or a port
nobody listens on.
"""

from __future__ import annotations

import socket
from pathlib import Path

from web_live import Live, free_port, serve

from judge_stub import stub_judge
from tfdojo.app.config import WebConfig
from tfdojo.app.trainer import Trainer
from tfdojo.practice.grading.judge import JudgeConfig
from tfdojo.practice.mock_judge import Judgement
from tfdojo.practice.store import ProgressStore

FREE_TEXT = "attention-formula-walkthrough"


def offline_grade(_question, _answer, _rubric):
    return Judgement("incorrect", 0.2, "stub feedback")


def answer(live: Live, text: str) -> str:
    start = live.post("/session", {"question_id": FREE_TEXT})
    key = start.headers["location"]
    question_page = live.get(key).text
    assert 'id="language">Write your answer in English' in question_page
    graded = live.post(f"{key}/answer", {"question_id": FREE_TEXT, "answer": text})
    assert graded.status == 303, graded.text
    return live.get(graded.headers["location"]).text


def trainer(tmp_path: Path, judge_url: str, timeout: float = 10) -> tuple[WebConfig, Trainer]:
    config = WebConfig(port=free_port(), data_dir=tmp_path, judge=JudgeConfig(judge_url, timeout=timeout))
    return config, Trainer(config, judge=offline_grade)


def test_the_opinion_is_shown_escaped_and_stored_and_the_grade_stands(tmp_path: Path) -> None:
    reply = '{"verdict": "correct", "reason": "<script>alert(1)</script> fine"}'
    with stub_judge(reply=reply, models=["<img src=x onerror=alert(2)>"]) as stub:
        with serve(*trainer(tmp_path, stub.url)) as live:
            page = answer(live, "The softmax weights average the values.")
            history = live.get("/history").text
        assert len(stub.chats()) == 1
    assert 'id="verdict">incorrect · score 0.20' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; fine" in page and "<script>alert(1)" not in page
    assert "(&lt;img src=x onerror=alert(2)&gt;)" in page and "<img src=x" not in page
    assert "Advice only" in page
    assert "<th>second opinion</th>" in history and "<summary>correct</summary>" in history
    assert "&lt;script&gt;alert(1)&lt;/script&gt; fine" in history and "<script>alert(1)" not in history
    with ProgressStore.open(tmp_path) as store:
        (attempt,) = store.attempts()
    assert (attempt.verdict, attempt.score, attempt.rating) == ("incorrect", 0.2, 1)
    assert attempt.second_opinion is not None and attempt.second_opinion["verdict"] == "correct"


def test_an_unreachable_judge_is_one_line_and_the_answer_is_kept(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    with serve(*trainer(tmp_path, dead)) as live:
        page = answer(live, "An answer.")
    assert 'id="second-opinion">No second opinion: cannot reach the judge' in page
    assert "The grade above stands." in page and 'id="verdict">incorrect · score 0.20' in page
    with ProgressStore.open(tmp_path) as store:
        (attempt,) = store.attempts()
    assert attempt.answer == "An answer." and attempt.second_opinion is None


def test_web_refuses_a_judge_url_that_is_not_http() -> None:
    from typer.testing import CliRunner

    from tfdojo.cli import app

    result = CliRunner().invoke(app, ["web", "--no-browser", "--judge", "file:///etc/passwd"])
    assert result.exit_code == 1 and "is not an http(s) URL" in result.stderr
