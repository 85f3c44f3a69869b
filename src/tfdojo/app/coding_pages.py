"""Coding: the statement, an editor holding the starter, and "Run hidden tests" with the sandbox's verdict per test."""

from __future__ import annotations

import time

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse

from tfdojo.app.pages import trainer_of
from tfdojo.app.render import page
from tfdojo.app.trainer import elapsed_since
from tfdojo.errors import BankError, InputTooLargeError
from tfdojo.practice.code import CodeGrade, grade_code, load_exercise
from tfdojo.practice.mock_judge import Judgement, record

router = APIRouter()


@router.get("/code", response_class=HTMLResponse)
def exercises(request: Request) -> HTMLResponse:
    """The coding questions of the bank."""
    t = trainer_of(request)
    with t.store() as store:
        states = t.states(store)
    listed = [(q, states[q.id]) for q in t.bank if q.type == "coding"]
    return page("code_list.html", title="Coding", listed=listed)


def _render(request: Request, question_id: str, source: str | None, grade: CodeGrade | None, status: int = 200):
    t = trainer_of(request)
    q = t.bank[question_id]
    if q.type != "coding":
        raise BankError(f"{question_id!r} is a {q.type} question, not a coding exercise; open it at /card/{q.id}")
    exercise = load_exercise(q.id)
    statement = (exercise.path / "statement.md").read_text(encoding="utf-8")
    starter = (exercise.path / "starter.py").read_text(encoding="utf-8")
    return page(
        "code.html",
        status,
        title=q.id,
        q=q,
        statement=statement,
        source=starter if source is None else source,
        grade=grade,
        limit=t.config.limits.code_bytes,
    )


@router.get("/code/{question_id}", response_class=HTMLResponse)
def editor(request: Request, question_id: str) -> HTMLResponse:
    """The statement and the editor with the starter code (the answer's time runs from here)."""
    t = trainer_of(request)
    with t.lock:
        t.code_opened.setdefault(question_id, time.monotonic())
    return _render(request, question_id, None, None)


@router.post("/code/{question_id}", response_class=HTMLResponse)
def run_tests(request: Request, question_id: str, source: str = Form("")) -> HTMLResponse:
    """Run the hidden tests in the sandbox on the submitted source; record the attempt; show each test's verdict."""
    t = trainer_of(request)
    size = len(source.encode("utf-8"))
    if size > t.config.limits.code_bytes:
        raise InputTooLargeError(
            f"your code is {size:,} bytes; the limit is {t.config.limits.code_bytes:,} — submit only the solution"
        )
    question = t.bank[question_id]
    grade = grade_code(question.id, source)
    verdict = "correct" if grade.passed else "incorrect"
    judgement = Judgement(verdict, 1.0 if grade.passed else 0.0, grade.feedback)
    with t.store() as store:
        with t.lock:
            seconds = elapsed_since(t.code_opened.pop(question.id, None))
        record(store, t.coding_session_id(store), question, source, seconds, judgement, t.clock)
    return _render(request, question_id, source, grade)
