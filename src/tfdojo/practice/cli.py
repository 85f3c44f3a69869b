"""The practice commands (mounted at the top level of `tfdojo`): drill, map, checklist, progress, export, import."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, get_args

import typer
from rich.console import Console
from rich.table import Table

from tfdojo.errors import AnswerParseError, BankError, ProgressError
from tfdojo.practice.counters import QuestionState, count, daily_history, question_states
from tfdojo.practice.loader import Bank, load_bank, load_bank_from
from tfdojo.practice.schema import SECTIONS, Difficulty, Question, QuestionType
from tfdojo.practice.session import DrillSession, Filters, read_submission, starter_copy
from tfdojo.practice.store import ProgressStore, data_dir
from tfdojo.practice.terminal import ask_override, countdown, read_answer, show_question, show_result

out = Console()
err = Console(stderr=True)

DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Folder of progress.sqlite3 (default: $TFDOJO_HOME, else per user).")
]
BankOpt = Annotated[Path | None, typer.Option("--bank", help="A folder of question .toml files (default: bundled).")]
SectionOpt = Annotated[list[str] | None, typer.Option("--section", help="Only this section (repeatable).")]
DifficultyOpt = Annotated[list[str] | None, typer.Option("--difficulty", help="Only this difficulty (repeatable).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print as JSON.")]


@contextmanager
def _errors() -> Iterator[None]:
    from tfdojo.cli import friendly_errors  # imported late: tfdojo.cli mounts these commands

    with friendly_errors():
        yield


def _check_choices(given: list[str] | None, allowed: tuple[str, ...], option: str) -> tuple[str, ...]:
    """The values of a repeatable filter option, each checked against what the bank schema allows."""
    unknown = [v for v in given or () if v not in allowed]
    if unknown:
        raise BankError(f"{option} {unknown[0]!r} is not one of: {', '.join(allowed)}")
    return tuple(given or ())


def _bank(folder: Path | None) -> Bank:
    return load_bank_from(folder) if folder is not None else load_bank()


def _now() -> datetime:
    return datetime.now(UTC)


def _states(store: ProgressStore, bank: Bank) -> dict[str, QuestionState]:
    return question_states([q.id for q in bank], store.attempts(), store.cards(), _now())


def drill(
    section: SectionOpt = None,
    type_: Annotated[list[str] | None, typer.Option("--type", help="Only this question type (repeatable).")] = None,
    difficulty: DifficultyOpt = None,
    due: Annotated[bool, typer.Option("--due", help="Only questions due for review.")] = False,
    grill: Annotated[bool, typer.Option("--grill", help="Only the grill questions.")] = False,
    count_: Annotated[int | None, typer.Option("--count", "-n", min=1, help="Ask at most this many.")] = 10,
    timer: Annotated[bool, typer.Option("--timer/--no-timer", help="Live countdown before answering.")] = True,
    data_dir_: DataDirOpt = None,
    bank_dir: BankOpt = None,
) -> None:
    """Timed practice: questions due first, graded at once, with the model answer and an "I knew it" override."""
    with _errors():
        bank = _bank(bank_dir)
        filters = Filters(
            _check_choices(section, tuple(SECTIONS), "--section"),
            _check_choices(type_, get_args(QuestionType), "--type"),
            _check_choices(difficulty, get_args(Difficulty), "--difficulty"),
            due,
            grill,
            count_,
        )
        folder = data_dir(data_dir_)
        with ProgressStore.open(folder) as store:
            session = DrillSession(store, filters)
            questions = session.questions(bank)
            if not questions:
                out.print("nothing to drill with these filters" + (" (nothing is due)" if due else ""))
                return
            answered = 0
            try:
                for index, question in enumerate(questions, 1):
                    answered += _drill_one(session, question, index, len(questions), folder / "work", timer)
            except (EOFError, KeyboardInterrupt):  # :quit, Ctrl-D or Ctrl-C: what was answered is already saved
                out.print()
            finally:
                session.finish()
            out.print(f"[bold]{answered}[/] answered · progress in {store.path}")


def _drill_one(session: DrillSession, question: Question, index: int, total: int, work: Path, timer: bool) -> int:
    """Ask one question until it is answered (1) or skipped (0); an unreadable answer is asked for again."""
    work_copy = None
    if question.type == "coding":
        starter, work_copy = starter_copy(question, work)
        out.print(f"[dim]starter file: {starter}[/]")
    show_question(question, index, total, work_copy)
    start = time.monotonic()
    deadline = start + question.minutes * 60
    if timer and sys.stdin.isatty():
        countdown(deadline)
    hinted = False
    while True:
        read = read_answer(question, deadline, work_copy)
        if read is None:
            return 0
        answer, hint_used = read
        hinted = hinted or hint_used
        try:
            if question.type == "coding":
                answer = read_submission(answer)
            submission = session.submit(question, answer, time.monotonic() - start, hinted)
        except (AnswerParseError, ProgressError) as e:
            err.print(f"[yellow]{e}[/] — try again", highlight=False)
            continue
        show_result(submission)
        ask_override(session, submission)
        return 1


# overview commands


def map_(data_dir_: DataDirOpt = None, bank_dir: BankOpt = None) -> None:
    """The bank by section × type: practiced / total questions in each cell, ★ mastered."""
    with _errors():
        bank = _bank(bank_dir)
        with ProgressStore.open(data_dir_) as store:
            states = _states(store, bank)
        types = sorted({q.type for q in bank})
        table = Table(title=f"{len(bank)} questions · practiced/total, ★ mastered", show_lines=False)
        table.add_column("section")
        for t in types:
            table.add_column(t, justify="center")
        for key, name in SECTIONS.items():
            row = [q for q in bank if q.section == key]
            if row:
                table.add_row(name, *(_cell([q for q in row if q.type == t], states) for t in types))
        table.add_row("[bold]all[/]", *(_cell([q for q in bank if q.type == t], states) for t in types))
        out.print(table)


def _cell(questions: list[Question], states: dict[str, QuestionState]) -> str:
    if not questions:
        return "[dim]·[/]"
    practiced = sum(states[q.id].practiced for q in questions)
    mastered = sum(states[q.id].mastered for q in questions)
    return f"{practiced}/{len(questions)}" + (f" ★{mastered}" if mastered else "")


def checklist(data_dir_: DataDirOpt = None, bank_dir: BankOpt = None) -> None:
    """The review checklist: per section, the grill questions and where you stand on each."""
    with _errors():
        bank = _bank(bank_dir)
        with ProgressStore.open(data_dir_) as store:
            states = _states(store, bank)
        counters = count(states, [q.id for q in bank.grill])
        out.print(f"[bold]grill readiness: {counters.grill_readiness}[/]")
        for key, name in SECTIONS.items():
            grill = [q for q in bank.grill if q.section == key]
            if not grill:
                continue
            table = Table(title=name, title_justify="left", show_header=False, box=None)
            for q in grill:
                s = states[q.id]
                mark = "[green]✔[/]" if s.cold or s.mastered else "[yellow]~[/]" if s.practiced else "[dim]○[/]"
                table.add_row(mark, q.id, s.label, q.prompt.splitlines()[0][:70])
            out.print(table)


def progress(as_json: JsonOpt = False, data_dir_: DataDirOpt = None, bank_dir: BankOpt = None) -> None:
    """Counters (practiced, cold, mastered, due), grill readiness and recent history."""
    with _errors():
        bank = _bank(bank_dir)
        with ProgressStore.open(data_dir_) as store:
            attempts = store.attempts()
            states = question_states([q.id for q in bank], attempts, store.cards(), _now())
            path = store.path
        c = count(states, [q.id for q in bank.grill])
        history = daily_history(attempts)
        recent = attempts[-10:][::-1]
        if as_json:
            payload: dict[str, Any] = {
                "questions": c.questions,
                "practiced": c.practiced,
                "cold": c.cold,
                "mastered": c.mastered,
                "due": c.due,
                "attempts": len(attempts),
                "grill": {"questions": c.grill, "cold": c.grill_cold, "readiness": c.grill_readiness},
                "history": [{"day": d.day.isoformat(), "attempts": d.attempts, "right": d.right} for d in history],
                "recent": [
                    {"question": a.question_id, "at": a.at.isoformat(), "verdict": a.verdict, "override": a.override}
                    for a in recent
                ],
                "database": str(path),
            }
            out.print_json(json.dumps(payload))
            return
        out.print(
            f"practiced [bold]{c.practiced}[/] of {c.questions} · cold [bold]{c.cold}[/] · "
            f"mastered [bold]{c.mastered}[/] · due [bold]{c.due}[/] · {len(attempts)} attempts"
        )
        out.print(f"grill readiness: [bold]{c.grill_readiness}[/]")
        if history:
            days = Table(title="last days", show_header=True)
            for col in ("day", "attempts", "right"):
                days.add_column(col, justify="right" if col != "day" else "left")
            for d in history[-14:]:
                days.add_row(d.day.isoformat(), str(d.attempts), str(d.right))
            out.print(days)
        if recent:
            table = Table(title="recent attempts")
            for col in ("when", "question", "verdict"):
                table.add_column(col)
            for a in recent:
                verdict = a.verdict + (f" → {a.override}" if a.override else "")
                table.add_row(a.at.strftime("%Y-%m-%d %H:%M"), a.question_id, verdict)
            out.print(table)
        out.print(f"[dim]{path}[/]")


# export / import


def export(
    path: Annotated[Path | None, typer.Argument(help="JSON file to write (default: standard output).")] = None,
    anki: Annotated[Path | None, typer.Option("--anki", help="Write the bank as an Anki deck (.apkg) here.")] = None,
    data_dir_: DataDirOpt = None,
    bank_dir: BankOpt = None,
) -> None:
    """Export progress as JSON (to merge elsewhere with `tfdojo import`), or the bank as an Anki deck."""
    with _errors():
        if anki is not None:
            from tfdojo.practice.anki import export_anki

            notes = export_anki(_bank(bank_dir), anki)
            err.print(f"wrote {notes} notes to {anki}")
            return
        from tfdojo.practice.transfer import export_progress

        with ProgressStore.open(data_dir_) as store:
            text = json.dumps(export_progress(store, _now()), indent=1, ensure_ascii=False)
        if path is None:
            sys.stdout.write(text + "\n")
            return
        try:
            path.write_text(text + "\n", encoding="utf-8")
        except OSError as e:
            raise ProgressError(f"cannot write {path}: {e}") from None
        err.print(f"wrote {path}")


def import_(
    path: Annotated[Path, typer.Argument(help="A JSON file written by `tfdojo export`.")],
    data_dir_: DataDirOpt = None,
) -> None:
    """Merge exported progress into this machine's (attempts already here are not duplicated)."""
    with _errors():
        from tfdojo.practice.transfer import import_progress, read_progress_file

        document = read_progress_file(path)
        with ProgressStore.open(data_dir_) as store:
            attempts, sessions = import_progress(store, document)
        skipped = len(document.attempts) - attempts
        out.print(f"imported {attempts} attempts and {sessions} sessions ({skipped} attempts were already here)")


COMMANDS = {
    "drill": drill,
    "map": map_,
    "checklist": checklist,
    "progress": progress,
    "export": export,
    "import": import_,
}


def register(app: typer.Typer) -> None:
    """Add the practice commands to a Typer app (the main `tfdojo` app mounts them at its top level)."""
    for name, command in COMMANDS.items():
        app.command(name)(command)
