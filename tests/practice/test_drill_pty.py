"""`tfdojo drill` driven in a pseudo-terminal, keys and pastes as a terminal sends them (pexpect).

The free-text grader is replaced in the child by a stub that writes each answer it receives to a file, so the
test sees exactly what the drill submitted: a pasted answer with a 4,200-character line and a blank line in it
arrives whole, an arrow key edits instead of being stored as an escape code, and text typed before the prompt
is drawn is kept.
"""

import json
import os
import sys

import pytest
from drill_bank import write_bank

pexpect = pytest.importorskip("pexpect")

DRIVER = """
import json, os, sys
from types import SimpleNamespace
import tfdojo.practice.grading.free_text as free_text

def stub(rubric, answer):
    with open(os.environ["ANSWERS"], "a") as f:
        f.write(json.dumps(answer) + "\\n")
    return SimpleNamespace(verdict="correct", shown="correct", score=1.0, feedback="stub", why=lambda: {"points": []})

free_text.grade_free_text = stub
from tfdojo.cli import app
app(sys.argv[1:], prog_name="tfdojo")
"""

PASTE_START, PASTE_END = "\x1b[200~", "\x1b[201~"
LEFT, ALT_ENTER = "\x1b[D", "\x1b\r"


@pytest.mark.skipif(sys.platform == "win32", reason="a POSIX pseudo-terminal")
def test_paste_arrow_keys_typeahead_and_summary_in_a_real_terminal(tmp_path):
    write_bank(tmp_path / "bank")
    answers = tmp_path / "answers.jsonl"
    args = ["drill", "--id", "why-scale-scores", "--id", "design-serving"]
    args += ["--data-dir", str(tmp_path / "data"), "--bank", str(tmp_path / "bank")]
    env = {**os.environ, "ANSWERS": str(answers), "TERM": "xterm", "EDITOR": "false", "PROMPT_TOOLKIT_NO_CPR": "1"}
    child = pexpect.spawn(
        sys.executable, ["-c", DRIVER, *args], env=env, dimensions=(40, 160), encoding="utf-8", timeout=60
    )
    try:
        child.send("typed early ")  # before the question is even drawn
        child.expect("Alt\\+Enter submits")
        long_line = "x" * 4200  # past the 4,095 characters a cooked terminal line holds, under the answer cap
        pasted = f"line one {long_line}\n\nline three after a blank line\n"
        child.send(PASTE_START + pasted + PASTE_END)
        child.send("ab" + LEFT + "X")  # the cursor moves left: aXb, no escape code stored
        child.send(ALT_ENTER)
        child.expect("model answer")
        child.expect("Enter keeps the grade")
        child.send("w\r")  # the why, then Enter keeps the grade
        child.expect("why this grade")
        child.send("\r")
        child.expect(r"\[2/2\]")
        child.expect("Alt\\+Enter submits")
        child.send("a short answer\r")
        child.send("\r")  # Enter on an empty line submits
        child.expect("Enter keeps the grade")
        child.send("d\r")
        child.expect("this session")
        child.expect("readiness: grill")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    received = [json.loads(line) for line in answers.read_text().splitlines()]
    assert received == [f"typed early line one {long_line}\n\nline three after a blank line\naXb", "a short answer"]
    assert child.exitstatus == 0
