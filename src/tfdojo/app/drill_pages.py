"""The timed session: a countdown per question, an answer box, the grade with its why, the model answer, the rating.

The server keeps the clock (seconds run from when the question page is first served), so a reload neither resets
the countdown nor changes the time recorded. Each answer is graded and written to the store before the result page
is shown; the redirect after the POST means a reload never submits twice.
"""

from __future__ import annotations

import time
from typing import get_args

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tfdojo.app.pages import trainer_of
from tfdojo.app.render import page
from tfdojo.app.trainer import Trainer, WebDrill, elapsed_since
from tfdojo.app.voice import voice_status
from tfdojo.errors import AnswerParseError, BankError, InputTooLargeError, ProgressError
from tfdojo.lab.links import run_it
from tfdojo.practice.grading.judge import Opinion, ask_and_keep, wants_judge
from tfdojo.practice.mock_judge import override, record
from tfdojo.practice.schema import SECTIONS, Difficulty, QuestionType
from tfdojo.practice.session import Filters, Submission, pick_questions

router = APIRouter()
SPOKEN_TYPES = tuple(t for t in get_args(QuestionType) if t != "coding")  # coding has its own page


def check_answer_size(text: str, cap: int) -> None:
    """InputTooLargeError when an answer is longer than the cap."""
    if len(text) > cap:
        raise InputTooLargeError(
            f"your answer is {len(text):,} characters; the limit is {cap:,} — shorten it and submit again"
        )


def _one(value: str, allowed: tuple[str, ...], name: str) -> tuple[str, ...]:
    if not value:
        return ()
    if value not in allowed:
        raise BankError(f"{name} {value!r} is not one of: {', '.join(allowed)}")
    return (value,)


@router.get("/session", response_class=HTMLResponse)
def start_form(request: Request) -> HTMLResponse:
    """Choose what to practise."""
    return page(
        "session_start.html",
        title="Timed session",
        sections=SECTIONS,
        types=SPOKEN_TYPES,
        difficulties=get_args(Difficulty),
    )


@router.post("/session")
def start(
    request: Request,
    section: str = Form(""),
    type: str = Form(""),
    difficulty: str = Form(""),
    count: int = Form(5, ge=1, le=60),
    due: bool = Form(False),
    grill: bool = Form(False),
    question_id: str = Form(""),
) -> RedirectResponse:
    """Open a session (due questions first) and go to its first question."""
    t = trainer_of(request)
    filters = Filters(
        sections=_one(section, tuple(SECTIONS), "section"),
        types=_one(type, SPOKEN_TYPES, "type") or SPOKEN_TYPES,
        difficulties=_one(difficulty, get_args(Difficulty), "difficulty"),
        due=due,
        grill=grill,
        count=count,
    )
    with t.store() as store:
        if question_id:
            ids = [t.bank[question_id].id]
        else:
            ids = [q.id for q in pick_questions(t.bank, t.states(store), filters)]
        if not ids:
            raise ProgressError("no questions match these filters; widen them (or untick 'due only')")
        session_id = store.start_session({**filters.as_dict(), "web": True}, t.clock())
    key = t.add_drill(WebDrill(session_id, ids))
    return RedirectResponse(f"/session/{key}", status_code=303)


@router.get("/session/{key}", response_class=HTMLResponse)
def ask(request: Request, key: str) -> HTMLResponse:
    """The current question with its countdown, or the summary when the session is done."""
    t = trainer_of(request)
    drill = t.drill(key)
    with t.lock:
        qid = drill.current
        if qid is not None and drill.shown_at is None:
            drill.shown_at = time.monotonic()
    if qid is None:
        with t.store() as store:
            done = [a for a in store.attempts() if a.session_id == drill.session_id]
        return page("session_done.html", title="Session done", attempts=done)
    return _question_page(t, key, drill)


def _question_page(t: Trainer, key: str, drill: WebDrill, answer: str = "", error: str = "", status: int = 200):
    q = t.bank[drill.question_ids[drill.index]]
    return page(
        "session_question.html",
        status,
        title="Timed session",
        key=key,
        q=q,
        number=drill.index + 1,
        total=len(drill.question_ids),
        seconds_left=max(int(q.minutes * 60 - elapsed_since(drill.shown_at)), 0),
        limit=t.config.limits.answer_chars,
        voice=voice_status(),
        answer=answer,
        error=error,
    )


@router.post("/session/{key}/answer")
def answer(request: Request, key: str, question_id: str = Form(...), answer: str = Form("")) -> Response:
    """Grade and record the answer, then show the result."""
    t = trainer_of(request)
    check_answer_size(answer, t.config.limits.answer_chars)
    drill = t.drill(key)
    with t.lock:
        if drill.current != question_id:
            raise ProgressError("this question was already answered; go on from the session page")
        seconds = elapsed_since(drill.shown_at)
        drill.index += 1  # claimed before grading, so a double submit cannot record twice
        drill.shown_at = None
    question = t.bank[question_id]
    try:
        judgement = t.judge(question, answer, None)
    except AnswerParseError as e:  # nothing recorded: ask the same question again, with the answer kept
        with t.lock:
            drill.index -= 1
            drill.shown_at = time.monotonic() - seconds
        return _question_page(t, key, drill, answer=answer, error=str(e), status=400)
    with t.store() as store:
        submission = record(store, drill.session_id, question, answer, seconds, judgement, t.clock)
    opinion = _second_opinion(t, submission)
    with t.lock:
        drill.last, drill.last_judgement, drill.last_opinion = submission, judgement, opinion
    return RedirectResponse(f"/session/{key}/result", status_code=303)


def _second_opinion(t: Trainer, submission: Submission) -> Opinion | str | None:
    """The judge's opinion of a recorded answer, stored with it; or why there is none. The grade is left alone."""
    if t.second_opinion is None or not wants_judge(submission.question):
        return None
    with t.store() as store:
        return ask_and_keep(t.second_opinion, submission, store)


@router.get("/session/{key}/result", response_class=HTMLResponse)
def result(request: Request, key: str) -> Response:
    """The grade with its why, the model answer, and the FSRS rating it gave (with the override buttons)."""
    t = trainer_of(request)
    drill = t.drill(key)
    if drill.last is None or drill.last_judgement is None:
        return RedirectResponse(f"/session/{key}", status_code=303)
    submission = drill.last
    with t.store() as store:
        stored = next(a for a in store.attempts(submission.question.id) if a.uid == submission.attempt.uid)
        card = store.cards().get(submission.question.id)
    return page(
        "session_result.html",
        title="Result",
        key=key,
        q=submission.question,
        attempt=stored,
        j=drill.last_judgement,
        opinion=drill.last_opinion,
        due=card.due if card else None,
        more=drill.current is not None,
        runs=run_it(submission.question.id, t.config.lab_dir),
    )


@router.post("/session/{key}/override")
def overrule(request: Request, key: str, knew: str = Form(...)) -> RedirectResponse:
    """ "I knew it" / "I didn't": replaces the grade of the last answer and re-rates its card."""
    t = trainer_of(request)
    drill = t.drill(key)
    if drill.last is None:
        raise ProgressError("there is no answer to override yet")
    with t.store() as store:
        override(store, drill.last, knew == "yes", t.clock)
    return RedirectResponse(f"/session/{key}/result", status_code=303)
