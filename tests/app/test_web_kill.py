"""kill -9 of the server: an answer the page confirmed is on disk, and an answer cut off mid-grading harms nothing."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from web_live import free_port, http

from tfdojo.practice.loader import load_bank
from tfdojo.practice.store import ProgressStore


def start_server(data: Path, port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "tfdojo.app", "--no-browser", "--port", str(port), "--data-dir", str(data)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if http("GET", f"http://127.0.0.1:{port}/history", timeout=2).status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"server did not start: {proc.stderr.read().decode() if proc.stderr else ''}")


def post(url: str, path: str, fields: str) -> tuple[int, str]:
    reply = http(
        "POST", url + path, fields.encode(), {"Origin": url, "Content-Type": "application/x-www-form-urlencoded"}
    )
    return reply.status, reply.headers.get("location", "")


def test_kill_9_loses_no_saved_attempt(tmp_path: Path) -> None:
    """Answer one question (confirmed), then kill -9 the server while it grades the next answer."""
    bank = load_bank()
    numeric = next(q for q in bank if q.type == "numeric")
    free_text = next(q for q in bank if q.type == "conceptual")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(tmp_path, port)
    in_flight = None
    try:
        status, key = post(url, "/session", f"question_id={numeric.id}")
        assert status == 303
        http("GET", url + key)
        status, _ = post(url, f"{key}/answer", f"question_id={numeric.id}&answer=42")
        assert status == 303  # the page has told the user the answer is graded
        status, key = post(url, "/session", f"question_id={free_text.id}")
        http("GET", url + key)
        body = f"question_id={free_text.id}&answer=softmax+over+the+keys"
        in_flight = threading.Thread(target=lambda: _ignore_errors(post, url, f"{key}/answer", body))
        in_flight.start()
        time.sleep(0.3)  # the grader is loading its encoder: this answer is mid-way
    finally:
        os.kill(server.pid, signal.SIGKILL)
        server.wait(10)
        if in_flight is not None:
            in_flight.join(30)
    with ProgressStore.open(tmp_path) as store:  # opens: the file passes SQLite's integrity check
        answers = [(a.question_id, a.answer) for a in store.attempts()]
        assert answers[0] == (numeric.id, "42") and len(answers) <= 2
        assert numeric.id in store.cards()


def _ignore_errors(fn, *args) -> None:  # noqa: ANN001, ANN002 - the connection dies with the server
    with contextlib.suppress(OSError):
        fn(*args)
