"""The practice commands (mounted at the top level of `tfdojo`): drill, map, checklist, progress, export, import.

Commands that only read open the progress database read-only, so they work on a read-only file.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, get_args

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from tfdojo.errors import AnswerParseError, BankError, ProgressError
from tfdojo.lab.links import LAB_DIR
from tfdojo.practice.counters import QuestionState, count, daily_history, question_states
from tfdojo.practice.grading.judge import JudgeConfig, SecondOpinion, ask_and_keep, no_opinion_line, wants_judge
from tfdojo.practice.history import shown_label
from tfdojo.practice.line_editor import EDIT, HINT, IDK, QUIT, SKIP, WHY, Reader, clock, make_reader
from tfdojo.practice.loader import Bank, load_bank, load_bank_from
from tfdojo.practice.schema import SECTIONS, Difficulty, Question, QuestionType
from tfdojo.practice.session import (
    ORDERS,
    DrillSession,
    Filters,
    Graders,
    Submission,
    hint_for,
    pick_questions,
    read_submission,
    starter_copy,
)
from tfdojo.practice.store import ProgressStore, data_dir
from tfdojo.practice.terminal import LABEL_STYLE, commands_help, show_question, show_result, show_summary, show_why

out = Console()
err = Console(stderr=True)

DataDirOpt = Annotated[
    Path | None, typer.Option("--data-dir", help="Folder of progress.sqlite3 (default: $TFDOJO_HOME, else per user).")
]
BankOpt = Annotated[Path | None, typer.Option("--bank", help="A folder of question .toml files (default: bundled).")]
SectionOpt = Annotated[list[str] | None, typer.Option("--section", help="Only this section (repeatable).")]
DifficultyOpt = Annotated[list[str] | None, typer.Option("--difficulty", help="Only this difficulty (repeatable).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print as JSON.")]
JudgeOpt = Annotated[
    str | None,
    typer.Option(
        "--judge",
        help="An OpenAI-compatible server (e.g. http://127.0.0.1:8080/v1) for a second opinion shown beside the "
        "grade; it never changes the grade. Key: $TFDOJO_JUDGE_API_KEY.",
    ),
]
JudgeModelOpt = Annotated[
    str | None, typer.Option("--judge-model", help="The judge's model (default: the first it lists).")
]
JudgeTimeoutOpt = Annotated[float, typer.Option("--judge-timeout", min=0.1, help="Seconds to wait for the judge.")]
CrossOpt = Annotated[
    bool,
    typer.Option(
        "--cross",
        help="Read free-text answers with the cross-encoder too: fairer to terse and paraphrased answers, easier "
        "on confident-wrong ones, about 0.35 s more CPU per answer (docs/grading.md).",
    ),
]
LabDirOpt = Annotated[
    Path,
    typer.Option("--lab-dir", file_okay=False, help="Where `tfdojo lab run` left its figures (default ./lab-results)."),
]


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


def _check_ids(ids: list[str] | None, bank: Bank) -> tuple[str, ...]:
    """The ids given with --id, each checked against the bank."""
    for question_id in ids or ():
        bank[question_id]  # BankError names the unknown id
    return tuple(ids or ())


def _interrupted(store: ProgressStore, bank: Bank) -> tuple[int, list[Question]] | None:
    """The last terminal drill, when it was left with questions still to ask: its id and those questions.

    Only the last one counts: starting a new drill gives up on an older interrupted one.
    """
    planned = [s for s in store.sessions() if s.plan]
    if not planned:
        return None
    known = {q.id for q in bank}
    left = [bank[q] for q in planned[-1].left if q in known]
    return (planned[-1].id, left) if left else None


def drill(
    section: SectionOpt = None,
    type_: Annotated[list[str] | None, typer.Option("--type", help="Only this question type (repeatable).")] = None,
    difficulty: DifficultyOpt = None,
    ids: Annotated[list[str] | None, typer.Option("--id", help="Ask this question (repeatable, in order).")] = None,
    due: Annotated[bool, typer.Option("--due", help="Only questions due for review.")] = False,
    grill: Annotated[bool, typer.Option("--grill", help="Only the grill questions.")] = False,
    order: Annotated[
        str, typer.Option("--order", help="due: due, then new, then the rest · weakest: lowest recall first.")
    ] = "due",
    count_: Annotated[int | None, typer.Option("--count", "-n", min=1, help="Ask at most this many.")] = 10,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the last interrupted drill.")] = False,
    timer: Annotated[bool, typer.Option("--timer/--no-timer", help="Show the time left while answering.")] = True,
    cross: CrossOpt = False,
    judge: JudgeOpt = None,
    judge_model: JudgeModelOpt = None,
    judge_timeout: JudgeTimeoutOpt = 60.0,
    lab_dir: LabDirOpt = LAB_DIR,
    data_dir_: DataDirOpt = None,
    bank_dir: BankOpt = None,
) -> None:
    """Timed practice: graded at once, with the model answer, an "I knew it" override and a summary at the end."""
    with _errors():
        second = SecondOpinion(JudgeConfig.from_options(judge, judge_model, judge_timeout)) if judge else None
        bank = _bank(bank_dir)
        folder = data_dir(data_dir_)
        with ProgressStore.open(folder) as store:
            if resume:
                found = _interrupted(store, bank)
                if found is None:
                    raise ProgressError(f"no interrupted drill to resume in {store.path}; start one with tfdojo drill")
                session, questions = DrillSession(store, graders=Graders.reading(cross), id=found[0]), found[1]
            else:
                filters = Filters(
                    _check_choices(section, tuple(SECTIONS), "--section"),
                    _check_choices(type_, get_args(QuestionType), "--type"),
                    _check_choices(difficulty, get_args(Difficulty), "--difficulty"),
                    due,
                    grill,
                    count_,
                    _check_ids(ids, bank),
                    _check_choices([order], ORDERS, "--order")[0],
                )
                questions = pick_questions(bank, _states(store, bank), filters)
                if not questions:
                    out.print("nothing to drill with these filters" + (" (nothing is due)" if due else ""))
                    return
                if _interrupted(store, bank):
                    out.print("[dim]a new drill: the interrupted drill is left (tfdojo drill --resume continued it)[/]")
                session = DrillSession(store, filters, graders=Graders.reading(cross))
                session.plan(questions)
            _run_drill(session, questions, bank, folder / "work", timer, second, lab_dir)


def _run_drill(
    session: DrillSession,
    questions: list[Question],
    bank: Bank,
    work: Path,
    timer: bool,
    judge: SecondOpinion | None = None,
    lab_dir: Path = LAB_DIR,
) -> None:
    """Ask the questions in turn, then the summary; an interrupted drill stays open for --resume."""
    grill_ids = [q.id for q in bank.grill]
    before = count(session.states(bank), grill_ids)
    done = session.store.session(session.id).asked
    reader = make_reader()
    skipped = 0
    if judge is not None:
        out.print(f"[dim]second opinion from {escape(judge.config.base)}: shown beside the grade, never in it[/]")
    try:
        for index, question in enumerate(questions, 1):
            skipped += not _drill_one(session, reader, question, index, len(questions), work, timer, judge, lab_dir)
            done += 1
            session.asked(done)
        session.finish()
    except (EOFError, KeyboardInterrupt):  # :quit, Ctrl-D or Ctrl-C: what was answered is already saved
        out.print()
    show_summary(session.submissions, skipped, before, count(session.states(bank), grill_ids))
    left = session.store.session(session.id).left
    if left:
        noun = "question" if len(left) == 1 else "questions"
        out.print(f"{len(left)} {noun} left: [bold]tfdojo drill --resume[/] continues this drill")
    out.print(f"[dim]progress in {session.store.path}[/]")


def _drill_one(
    session: DrillSession,
    reader: Reader,
    question: Question,
    index: int,
    total: int,
    work: Path,
    timer: bool,
    judge: SecondOpinion | None = None,
    lab_dir: Path = LAB_DIR,
) -> bool:
    """Ask one question until it is answered (True) or skipped (False); an unreadable answer is asked for again."""
    work_copy = starter_copy(question, work)[1] if question.type == "coding" else None
    show_question(question, index, total, work_copy)
    start = time.monotonic()
    deadline = start + question.minutes * 60 if timer else None
    multiline = question.type not in ("numeric", "coding")
    hinted, draft = False, ""
    last = session.submissions[-1].outcome if session.submissions else None
    while True:
        reply = reader.read("", multiline, deadline, commands_help(question), draft)
        if reply.command == QUIT:
            raise EOFError
        if reply.command == SKIP:
            return False
        if reply.command in (HINT, WHY, EDIT):
            draft = reply.text if multiline else ""  # what was typed before the command is kept
        if reply.command == HINT:
            hinted = True
            out.print(f"[cyan]hint:[/] {hint_for(question)}", highlight=False)
            continue
        if reply.command == WHY:
            show_why(last)
            continue
        if reply.command == EDIT:
            draft = _edit(draft, work_copy)
            continue
        try:
            if reply.command == IDK:
                submission = session.dont_know(question, time.monotonic() - start, hinted)
            else:
                answer = reply.text or (str(work_copy) if work_copy is not None else "")
                if not answer:
                    continue
                if question.type == "coding":
                    answer = read_submission(answer)
                with out.status("grading…", spinner="dots"):
                    submission = session.submit(question, answer, time.monotonic() - start, hinted)
        except (AnswerParseError, ProgressError) as e:
            err.print(f"[yellow]{e}[/] — try again", highlight=False)
            draft = reply.text if multiline else ""  # a long answer comes back to be shortened or fixed
            continue
        show_result(submission, lab_dir)
        if judge is not None and reply.command != IDK and wants_judge(question):
            _second_opinion(session, judge, submission)
        _ask_override(session, reader, submission)
        return True


def _second_opinion(session: DrillSession, judge: SecondOpinion, submission: Submission) -> None:
    """Ask the judge, show its opinion beside the grade and store it; on failure (or Ctrl-C) one line, and go on."""
    with out.status("asking the judge…", spinner="dots"):
        opinion = ask_and_keep(judge, submission, session.store)
    if isinstance(opinion, str):
        err.print(Text(no_opinion_line(opinion), style="yellow"), soft_wrap=True)
        return
    line = Text("second opinion ", style="dim") + Text(f"({opinion.model}): ", style="dim")
    line += Text(opinion.verdict, style=LABEL_STYLE.get(opinion.verdict, "white")) + Text(f" — {opinion.reason}")
    out.print(line)
    out.print("[dim]advice only: the grade above is what schedules this question[/]")


def _edit(draft: str, work_copy: Path | None) -> str:
    """Open $EDITOR: on the working copy of a coding question (then Enter submits it), else on the draft answer."""
    if work_copy is not None:
        click.edit(filename=str(work_copy))
        return ""
    edited = click.edit(draft or "", extension=".md", require_save=False)
    return (edited or "").strip()


def _ask_override(session: DrillSession, reader: Reader, submission: Submission) -> None:
    """Let the user overrule the grader: k = I knew it, d = I didn't, w = why, Enter keeps the grade."""
    keys = "Enter keeps the grade · k = I knew it · d = I didn't · w = why"
    out.print(f"[dim]{keys}[/]")
    while True:
        choice = reader.read("", False, None, keys)
        key = choice.text.strip().lower()
        if key == "w" or choice.command == WHY:
            show_why(submission.outcome)
            continue
        if key in ("k", "d"):
            session.override(submission, knew=key == "k")
            out.print("[dim]recorded: " + ("you knew it" if key == "k" else "you didn't") + "[/]")
        return


# overview commands


def map_(data_dir_: DataDirOpt = None, bank_dir: BankOpt = None) -> None:
    """The bank by section × type: practiced / total questions in each cell, ★ mastered."""
    with _errors():
        bank = _bank(bank_dir)
        with ProgressStore.open(data_dir_, read_only=True) as store:
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
        with ProgressStore.open(data_dir_, read_only=True) as store:
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
        with ProgressStore.open(data_dir_, read_only=True) as store:
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
                    {
                        "question": a.question_id,
                        "at": a.at.isoformat(),
                        "verdict": a.verdict,
                        "override": a.override,
                        "label": shown_label(a),
                        "why": a.why,
                        "second_opinion": a.second_opinion,
                    }
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
                table.add_row(a.at.strftime("%Y-%m-%d %H:%M"), a.question_id, shown_label(a))
            out.print(table)
        out.print(f"[dim]{path}[/]")


def history(
    question: Annotated[list[str] | None, typer.Argument(help="Only these question ids.")] = None,
    section: SectionOpt = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Show at most this many.")] = 20,
    as_json: JsonOpt = False,
    data_dir_: DataDirOpt = None,
    bank_dir: BankOpt = None,
) -> None:
    """Past attempts, newest first: when, question, label, score, time and what you answered."""
    with _errors():
        from tfdojo.practice.history import as_json as attempt_json
        from tfdojo.practice.history import opinion_text, select

        bank = _bank(bank_dir)
        sections = _check_choices(section, tuple(SECTIONS), "--section")
        with ProgressStore.open(data_dir_, read_only=True) as store:
            chosen = select(store.attempts(), bank, _check_ids(question, bank), sections)[:limit]
        if as_json:
            out.print_json(json.dumps([attempt_json(a) for a in chosen], ensure_ascii=False))
            return
        if not chosen:
            out.print("no attempts yet with these filters")
            return
        full = bool(question)  # one question asked for: show whole answers (and the judge's reasons)
        judged = any(a.second_opinion for a in chosen)  # a --judge opinion: one more column, beside the grade
        table = Table(title=f"{len(chosen)} attempts, newest first", show_lines=full)
        columns = ["when", "question", "verdict", "score", "time", "answer"] + (["second opinion"] if judged else [])
        for column in columns:
            table.add_column(column, overflow="fold")
        for a in chosen:
            answer = a.answer if full else a.answer.replace("\n", " ")[:60]
            table.add_row(
                a.at.strftime("%Y-%m-%d %H:%M"),
                a.question_id,
                shown_label(a),
                f"{a.score:.2f}",
                clock(a.seconds),
                Text(answer),
                *([Text(opinion_text(a, full))] if judged else []),
            )
        out.print(table)


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

        with ProgressStore.open(data_dir_, read_only=True) as store:
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
    bank_dir: BankOpt = None,
) -> None:
    """Merge exported progress into this machine's (attempts already here are not duplicated)."""
    with _errors():
        from tfdojo.practice.transfer import check_document, import_progress, read_progress_file

        document = read_progress_file(path)
        check_document(document, [q.id for q in _bank(bank_dir)], _now(), path)
        with ProgressStore.open(data_dir_) as store:
            attempts, sessions = import_progress(store, document)
        skipped = len(document.attempts) - attempts
        out.print(f"imported {attempts} attempts and {sessions} sessions ({skipped} attempts were already here)")


COMMANDS = {
    "drill": drill,
    "map": map_,
    "checklist": checklist,
    "progress": progress,
    "history": history,
    "export": export,
    "import": import_,
}


def register(app: typer.Typer) -> None:
    """Add the practice commands to a Typer app (the main `tfdojo` app mounts them at its top level)."""
    for name, command in COMMANDS.items():
        app.command(name)(command)
