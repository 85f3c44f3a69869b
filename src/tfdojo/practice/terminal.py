"""The terminal side of a drill: the question panel, a live countdown, reading the answer, the result card."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.markdown import Markdown
from rich.panel import Panel
from rich.text import Text

from tfdojo.practice.code import load_exercise
from tfdojo.practice.schema import SECTIONS, Question
from tfdojo.practice.session import DrillSession, Submission, hint_for

out = Console()

VERDICT_STYLE = {"correct": "green", "partial": "yellow", "close": "yellow", "uncertain": "cyan", "incorrect": "red"}
QUIT, SKIP, HINT = ":quit", ":skip", ":hint"


def clock(seconds: float) -> str:
    """Seconds as m:ss (negative once the time is up)."""
    sign = "-" if seconds < 0 else ""
    s = int(abs(seconds))
    return f"{sign}{s // 60}:{s % 60:02d}"


def countdown(deadline: float) -> None:
    """Think time with a live countdown until Enter is pressed (only on a terminal)."""
    pressed = threading.Event()

    def wait_for_enter() -> None:
        sys.stdin.readline()
        pressed.set()

    threading.Thread(target=wait_for_enter, daemon=True).start()

    def view() -> Text:
        left = deadline - time.monotonic()
        style = "bold green" if left > 60 else "bold yellow" if left > 0 else "bold red"
        return Text.assemble(("⏱ ", ""), (clock(left), style), "  think it through, then press Enter to answer")

    with Live(view(), console=out, transient=True, refresh_per_second=4) as live:
        while not pressed.wait(0.25):
            live.update(view())


def read_answer(question: Question, deadline: float, work_copy: Path | None) -> tuple[str, bool] | None:
    """The answer typed (None to skip), and whether a hint was asked for; raises EOFError on :quit or Ctrl-D."""
    hint_used = False
    lines: list[str] = []
    single_line = question.type in ("numeric", "coding")
    while True:
        line = out.input(f"[dim]{clock(deadline - time.monotonic())} left[/] > ")
        command = line.strip().lower()
        if command == QUIT:
            raise EOFError
        if command == SKIP:
            return None
        if command == HINT:
            hint_used = True
            out.print(f"[cyan]hint:[/] {hint_for(question)}")
            continue
        if single_line:
            if question.type == "coding" and not line.strip() and work_copy is not None:
                line = str(work_copy)
            if line.strip():
                return line.strip(), hint_used
            continue
        if not line.strip() and lines:
            return "\n".join(lines), hint_used
        if line.strip():
            lines.append(line)


def show_question(question: Question, index: int, total: int, work_copy: Path | None) -> None:
    """The question panel and how to answer it."""
    title = f"[{index}/{total}] {SECTIONS[question.section]} · {question.type} · {question.difficulty}"
    out.print(Panel(Markdown(question.prompt), title=title, subtitle=f"~{question.minutes} min", expand=False))
    if work_copy is not None:
        out.print(f"your copy of the starter: [bold]{work_copy}[/] — edit it, then press Enter (or give a path)")
    elif question.type == "numeric":
        out.print("[dim]one number with its unit (e.g. 2.5 GiB); working is fine if it ends with '= answer'[/]")
    else:
        out.print("[dim]write your answer; an empty line submits[/]")
    out.print(f"[dim]{HINT} for a hint (the attempt is then not cold) · {SKIP} · {QUIT}[/]")


def show_result(submission: Submission) -> None:
    """The verdict with the grader's feedback, then the model-answer card."""
    outcome, q = submission.outcome, submission.question
    style = VERDICT_STYLE.get(outcome.verdict, "white")
    out.print(
        Panel(Text(outcome.feedback), title=f"[{style}]{outcome.verdict}[/] · score {outcome.score:.2f}", expand=False)
    )
    card = [f"**{q.short_answer}**", "", q.explanation, "", "Common mistakes:"]
    card += [f"- {m}" for m in q.mistakes]
    if q.type == "coding":  # the mistakes its hidden tests are known to catch, one per mutant
        card += ["", "Common mistakes this exercise checks:"]
        card += [f"- {m.why}" for m in load_exercise(q.id).mutants]
    card += ["", "Sources: " + "; ".join(f"[{s.title}]({s.url})" for s in q.sources)]
    out.print(Panel(Markdown("\n".join(card)), title="model answer", expand=False))


def ask_override(drill: DrillSession, submission: Submission) -> None:
    """Let the user overrule the grader: k = I knew it, d = I didn't, Enter keeps the grade."""
    choice = out.input("[dim]Enter keeps the grade · k = I knew it · d = I didn't[/] > ").strip().lower()
    if choice in ("k", "d"):
        drill.override(submission, knew=choice == "k")
        out.print("[dim]recorded: " + ("you knew it" if choice == "k" else "you didn't") + "[/]")
