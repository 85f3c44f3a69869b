"""The mock interview in the browser: the same :class:`~tfdojo.practice.mock.MockInterview` as `tfdojo mock`."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from tfdojo.app.drill_pages import check_answer_size
from tfdojo.app.pages import trainer_of
from tfdojo.app.render import page
from tfdojo.app.trainer import WebMock, elapsed_since
from tfdojo.app.voice import voice_status
from tfdojo.errors import ProgressError
from tfdojo.practice.mock import LEVELS, MockConfig, MockInterview, record_turn
from tfdojo.practice.mock_report import build_report
from tfdojo.practice.schema import SECTIONS

router = APIRouter()


@router.get("/mock", response_class=HTMLResponse)
def start_form(request: Request) -> HTMLResponse:
    """Length, seed, starting level and sections."""
    return page("mock_start.html", title="Mock interview", levels=LEVELS, sections=SECTIONS)


@router.post("/mock")
def start(
    request: Request,
    minutes: int = Form(30),
    seed: int = Form(0),
    level: str = Form("medium"),
    section: Annotated[list[str] | None, Form()] = None,
) -> RedirectResponse:
    """Open an interview and go to its first question."""
    t = trainer_of(request)
    sections = tuple(s for s in section or () if s)
    config = MockConfig(minutes=minutes, seed=seed, level=level, sections=sections, cross=t.config.cross)
    interview = MockInterview(t.bank, config, judge=t.judge)
    with t.store() as store:
        session_id = store.start_session({"mock": {"seed": seed, "minutes": minutes}, "web": True}, t.clock())
    key = t.add_mock(WebMock(session_id, interview))
    return RedirectResponse(f"/mock/{key}", status_code=303)


@router.get("/mock/{key}", response_class=HTMLResponse)
def ask(request: Request, key: str) -> Response:
    """The current prompt (a question or a follow-up) with the interview's clock; the report when it is over."""
    t = trainer_of(request)
    mock = t.mock(key)
    with t.lock:
        prompt = mock.interview.current
        if prompt is not None and mock.shown_at is None:
            mock.shown_at = time.monotonic()
        left = mock.interview.seconds_left - elapsed_since(mock.shown_at)
    if prompt is None:
        return RedirectResponse(f"/mock/{key}/report", status_code=303)
    return page(
        "mock_question.html",
        title="Mock interview",
        key=key,
        prompt=prompt,
        number=len(mock.interview.turns) + 1,
        seconds_left=max(int(left), 0),
        last=mock.last_verdict,
        limit=t.config.limits.answer_chars,
        voice=voice_status(),
        answer="",
    )


@router.post("/mock/{key}/answer")
def answer(request: Request, key: str, turn: int = Form(...), answer: str = Form("")) -> RedirectResponse:
    """Grade the answer (main questions are recorded as attempts) and go to the next prompt."""
    t = trainer_of(request)
    check_answer_size(answer, t.config.limits.answer_chars)
    mock = t.mock(key)
    with mock.lock:  # one answer at a time per interview: the state machine moves on inside
        if turn != len(mock.interview.turns) + 1:
            raise ProgressError("this prompt was already answered; go on from the interview page")
        done = mock.interview.answer(answer, elapsed_since(mock.shown_at))
        mock.shown_at = None
        mock.last_verdict = done.judgement.verdict
    with t.store() as store:
        record_turn(store, mock.session_id, done)
        if mock.interview.finished:
            store.end_session(mock.session_id, t.clock())
    return RedirectResponse(f"/mock/{key}", status_code=303)


@router.post("/mock/{key}/stop")
def stop(request: Request, key: str) -> RedirectResponse:
    """End the interview now and show the report."""
    t = trainer_of(request)
    mock = t.mock(key)
    with t.lock:
        mock.interview.stop()
    with t.store() as store:
        store.end_session(mock.session_id, t.clock())
    return RedirectResponse(f"/mock/{key}/report", status_code=303)


@router.get("/mock/{key}/report", response_class=HTMLResponse)
def report(request: Request, key: str) -> HTMLResponse:
    """Per-section scores, time per answer, missed points with model answers, readiness, what to drill next."""
    mock = trainer_of(request).mock(key)
    return page("mock_report.html", title="Mock interview report", key=key, r=build_report(mock.interview))


@router.get("/mock/{key}/report.json")
def report_json(request: Request, key: str) -> JSONResponse:
    """The report as JSON."""
    return JSONResponse(build_report(trainer_of(request).mock(key).interview).as_dict())
