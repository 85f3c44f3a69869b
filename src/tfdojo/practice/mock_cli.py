"""`tfdojo mock`: the mock interview in the terminal (answers end with an empty line; `/stop` ends early).

``--cross`` reads free-text answers with the cross-encoder too, as `tfdojo drill --cross` does (docs/grading.md).
With ``--judge URL`` each free-text main answer also gets a second opinion from an OpenAI-compatible server, printed
beside the grade and stored with the attempt, as in `tfdojo drill`; it never changes the grade, the level or the
follow-ups, and the time spent waiting for it is not taken from the interview's budget (answers' seconds are).
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from tfdojo.practice.cli import CrossOpt, JudgeModelOpt, JudgeOpt, JudgeTimeoutOpt
from tfdojo.practice.grading.judge import JudgeConfig, SecondOpinion, ask_and_keep, no_opinion_line, wants_judge
from tfdojo.practice.loader import load_bank, load_bank_from
from tfdojo.practice.mock import LEVELS, MockConfig, MockInterview, record_turn
from tfdojo.practice.mock_report import build_report, render_text
from tfdojo.practice.session import Submission
from tfdojo.practice.store import ProgressStore

STOP = "/stop"


def _read_answer() -> str | None:
    """Lines up to an empty line (or end of input); None at end of input with nothing typed or on /stop."""
    lines: list[str] = []
    for line in sys.stdin:
        text = line.rstrip("\n")
        if text.strip() == STOP:
            return None
        if not text.strip():
            if lines:
                break
            continue
        lines.append(text)
    return "\n".join(lines) if lines else None


def _second_opinion(store: ProgressStore, judge: SecondOpinion, submission: Submission) -> str:
    """Ask the judge about a recorded answer and store its opinion; the line to print (why there is none on failure)."""
    opinion = ask_and_keep(judge, submission, store)
    if isinstance(opinion, str):
        return no_opinion_line(opinion)
    return f"second opinion ({opinion.model}): {opinion.verdict} — {opinion.reason} (advice only: the grade stands)"


def mock(
    minutes: Annotated[int, typer.Option(help="Length of the interview in minutes.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed: the same seed and answers give the same interview.")] = 0,
    level: Annotated[str, typer.Option(help=f"Starting difficulty: {', '.join(LEVELS)}.")] = "medium",
    section: Annotated[list[str] | None, typer.Option("--section", help="Only this section (repeatable).")] = None,
    follow_ups: Annotated[bool, typer.Option("--follow-ups/--no-follow-ups", help="Probe missed points.")] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    data_dir_: Annotated[Path | None, typer.Option("--data-dir", help="Folder of progress.sqlite3.")] = None,
    bank_dir: Annotated[Path | None, typer.Option("--bank", help="A folder of question .toml files.")] = None,
    cross: CrossOpt = False,
    judge: JudgeOpt = None,
    judge_model: JudgeModelOpt = None,
    judge_timeout: JudgeTimeoutOpt = 60.0,
) -> None:
    """A timed mock interview across sections, with follow-ups and a report (answers end with an empty line)."""
    from tfdojo.cli import friendly_errors  # late: tfdojo.cli mounts this command

    with friendly_errors():
        second = SecondOpinion(JudgeConfig.from_options(judge, judge_model, judge_timeout)) if judge else None
        config = MockConfig(
            minutes=minutes, seed=seed, level=level, sections=tuple(section or ()), follow_ups=follow_ups, cross=cross
        )
        bank = load_bank_from(bank_dir) if bank_dir is not None else load_bank()
        interview = MockInterview(bank, config)
        with ProgressStore.open(data_dir_) as store:
            session_id = store.start_session({"mock": {"seed": seed, "minutes": minutes}}, datetime.now(UTC))
            err = sys.stderr
            if second is not None:
                err.write(f"second opinion from {second.config.base}: shown beside the grade, never in it\n")
            while (prompt := interview.current) is not None:
                left = interview.seconds_left / 60
                tag = "follow-up" if prompt.kind == "follow_up" else f"{prompt.question.section} · {prompt.level}"
                err.write(f"\n[{tag} · {left:.0f} min left]\n{prompt.text}\n> ")
                err.flush()
                started = time.monotonic()
                answer = _read_answer()
                if answer is None:
                    interview.stop()
                    break
                turn = interview.answer(answer, time.monotonic() - started)
                submission = record_turn(store, session_id, turn)
                err.write(f"{turn.judgement.verdict} ({turn.judgement.score:.0%})\n")
                if second is not None and submission is not None and wants_judge(submission.question):
                    err.write(_second_opinion(store, second, submission) + "\n")
            store.end_session(session_id, datetime.now(UTC))
        report = build_report(interview)
        sys.stdout.write((json.dumps(report.as_dict(), indent=1) if as_json else render_text(report)) + "\n")


def register(app: typer.Typer) -> None:
    """Add `mock` to the main app."""
    app.command("mock")(mock)
