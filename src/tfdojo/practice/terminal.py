"""The terminal side of a drill: the question panel, the result card, the why of a grade, the session summary."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markdown import Markdown
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tfdojo.lab.links import LAB_DIR, run_it
from tfdojo.practice.code import load_exercise
from tfdojo.practice.counters import Counters
from tfdojo.practice.line_editor import EDIT, HINT, IDK, QUIT, SKIP, SUBMIT_HELP, WHY, clock
from tfdojo.practice.scheduler import effective_verdict
from tfdojo.practice.schema import SECTIONS, Question
from tfdojo.practice.session import Outcome, Submission

out = Console()

LABEL_STYLE = {"correct": "green", "partial": "yellow", "close": "yellow", "incorrect": "red"}


def commands_help(question: Question) -> str:
    """The commands and the submit gesture for this type of question, one line."""
    if question.type == "coding":
        submit = f"Enter submits your copy · {EDIT} opens it in $EDITOR"
    elif question.type == "numeric":
        submit = "Enter submits"
    else:
        submit = SUBMIT_HELP
    return f"{submit} · {HINT} {IDK} (I don't know) {WHY} {SKIP} {QUIT}"


def show_question(question: Question, index: int, total: int, work_copy: Path | None = None) -> None:
    """The question panel, the exercise statement for a coding question, and how to answer."""
    title = f"[{index}/{total}] {SECTIONS[question.section]} · {question.type} · {question.difficulty}"
    out.print(Panel(Markdown(question.prompt), title=title, subtitle=f"~{question.minutes} min", expand=False))
    if question.type == "coding":
        out.print(Panel(Markdown(load_exercise(question.id).statement), title="exercise", expand=False))
        out.print(f"your fresh copy of the starter: [bold]{work_copy}[/] — edit it, then press Enter (or give a path)")
    elif question.type == "numeric":
        out.print("[dim]one number with its unit (e.g. 2.5 GiB); working is fine if it ends with '= answer'[/]")
    else:
        out.print("[dim]write your answer in English[/]")
    out.print(f"[dim]{commands_help(question)}[/]", highlight=False)


def flag(outcome: Outcome) -> str:
    """A note when the grader was unsure (its verdict was "uncertain"): the learner should check."""
    return " · [cyan]unsure: check it against the model answer[/]" if outcome.verdict == "uncertain" else ""


def show_result(submission: Submission, lab_dir: Path = LAB_DIR) -> None:
    """The label (correct / partial / close / incorrect) with the grader's feedback, the model-answer card, then the
    lab experiments that answer the question (the command, and the figure a run left in ``lab_dir``)."""
    outcome, q = submission.outcome, submission.question
    style = LABEL_STYLE.get(outcome.label, "white")
    title = f"[{style}]{outcome.label}[/] · score {outcome.score:.2f}{flag(outcome)}"
    out.print(Panel(Text(outcome.feedback), title=title, expand=False))
    card = [f"**{q.short_answer}**", "", q.explanation, "", "Common mistakes:"]
    card += [f"- {m}" for m in q.mistakes]
    if q.type == "coding":  # the mistakes its hidden tests are known to catch, one per mutant
        card += ["", "Common mistakes this exercise checks:"]
        card += [f"- {m.why}" for m in load_exercise(q.id).mutants]
    card += ["", "Sources: " + "; ".join(f"[{s.title}]({s.url})" for s in q.sources)]
    out.print(Panel(Markdown("\n".join(card)), title="model answer", expand=False))
    for run in run_it(q.id, lab_dir):
        figure = f" · figure: {run.figure}" if run.figure else ""
        out.print(f"Run it: [bold]{run.command}[/]{escape(figure)}", highlight=False, soft_wrap=True)


def show_why(outcome: Outcome | None) -> None:
    """The evidence behind the last grade: which sentence matched which point (or the numbers, or the tests)."""
    why = outcome.why if outcome is not None else None
    if not why:
        out.print("[dim]no grade to explain yet[/]")
        return
    if "points" in why:
        table = Table(title="why this grade", show_lines=True)
        for column in ("point", "status", "your sentence", "similarity"):
            table.add_column(column)
        for p in why["points"]:
            status = p["status"]
            if p.get("decided_by") == "cross-encoder":
                status += f" (cross-encoder, P {p['cross_probability']:.2f})"
            table.add_row(p["point"], status, p.get("sentence") or "—", f"{p.get('similarity', 0):.2f}")
        for m in why.get("misconceptions", []):
            table.add_row(m["misconception"], "misconception", m["sentence"], f"{m['similarity']:.2f}")
        out.print(table)
        if why.get("ungraded"):
            out.print(f"[yellow]not graded: {why['ungraded']}[/]")
        if why.get("decision"):
            out.print(decision_line(why["decision"]), highlight=False)
    elif "tests" in why:
        for t in why["tests"]:
            message = f": {t['message']}" if t["message"] else ""
            out.print(("[green]✔[/] " if t["ok"] else "[red]✘[/] ") + t["name"] + message, highlight=False)
    elif "read" in why:
        error = why["relative_error"]
        off = f"{error:.1%}" if error is not None else "a different kind of quantity"
        out.print(f"read {why['read']!r}; expected {why['expected']:.4g} {why['unit']}; off by {off}")
        out.print(why["derivation"], highlight=False)
    else:
        out.print(why, highlight=False)


def decision_line(decision: dict[str, Any]) -> str:
    """How the label was reached (``Grade.why()["decision"]``): by the verdict head with its two probabilities, or
    by the score cut-offs, and how many stated errors (misconceptions, contradicted points) lowered it."""
    how = "decided by the score cut-offs"
    if decision["by"] == "head":
        how = "decided by the verdict head"
        if "p_correct" in decision:
            how += f": P(at least partial) {decision['p_at_least_partial']:.2f}, P(correct) {decision['p_correct']:.2f}"
        if "cross_encoder_pairs" in decision:
            how += f" over the cross-encoder's reading of {decision['cross_encoder_pairs']} (point, sentence) pairs"
    errors = decision["stated_errors"]
    lowered = f"{errors} stated error{'s' if errors != 1 else ''} lowered the label" if errors else "no stated errors"
    return f"{how} · {lowered}"


def show_summary(submissions: list[Submission], skipped: int, before: Counters, after: Counters) -> None:
    """The end of a drill: each answer's label and time, then readiness before → after."""
    if submissions:
        table = Table(title="this session")
        for column in ("question", "verdict", "score", "time"):
            table.add_column(column)
        for s in submissions:
            label = effective_verdict(s.outcome.label, s.attempt.override)
            shown = label + (" (overridden)" if s.attempt.override else "")
            style = LABEL_STYLE.get(label, "white")
            table.add_row(s.question.id, f"[{style}]{shown}[/]", f"{s.outcome.score:.2f}", clock(s.attempt.seconds))
        out.print(table)
    right = sum(effective_verdict(s.outcome.label, s.attempt.override) == "correct" for s in submissions)
    out.print(f"[bold]{len(submissions)}[/] answered, {right} right" + (f", {skipped} skipped" if skipped else ""))
    out.print(
        f"readiness: grill {before.grill_readiness} → [bold]{after.grill_readiness}[/] · "
        f"practiced {before.practiced} → {after.practiced} · cold {before.cold} → {after.cold} · "
        f"mastered {before.mastered} → {after.mastered}"
    )
