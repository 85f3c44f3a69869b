"""The read-only pages: Home (readiness, due, streak, trend), Map (sections × types), Card, History."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from typing import get_args

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from tfdojo.app.plot import accuracy_by_section, trend_svg
from tfdojo.app.render import page
from tfdojo.app.trainer import Trainer
from tfdojo.app.voice import voice_status
from tfdojo.errors import BankError, ConfigError
from tfdojo.lab.links import figure_of, run_it
from tfdojo.practice.counters import Day, QuestionState, count, daily_history
from tfdojo.practice.schema import SECTIONS, Difficulty, Question, QuestionType

router = APIRouter()
HISTORY_ROWS = 200


def trainer_of(request: Request) -> Trainer:
    """The app's shared :class:`Trainer`."""
    return request.app.state.trainer


def streak(days: list[Day], today: date) -> int:
    """Consecutive days of practice ending today (or yesterday, when today has no attempt yet)."""
    practised = {d.day for d in days if d.attempts}
    day = today if today in practised else today - timedelta(days=1)
    run = 0
    while day in practised:
        run += 1
        day -= timedelta(days=1)
    return run


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> HTMLResponse:
    """Readiness ("38 of 60 cold"), due today, streak, and accuracy per section over time."""
    t = trainer_of(request)
    with t.store() as store:
        attempts = store.attempts()
        states = t.states(store)
    counters = count(states, [q.id for q in t.bank.grill])
    section_of = {q.id: q.section for q in t.bank}
    plot = trend_svg(accuracy_by_section(attempts, section_of), SECTIONS)
    return page(
        "home.html",
        title="Home",
        c=counters,
        streak=streak(daily_history(attempts), t.clock().date()),
        attempts=len(attempts),
        plot=plot,
    )


def _choice(value: str | None, allowed: tuple[str, ...], name: str) -> str | None:
    if value in (None, ""):
        return None
    if value not in allowed:
        raise BankError(f"{name} {value!r} is not one of: {', '.join(allowed)}")
    return value


@router.get("/map", response_class=HTMLResponse)
def question_map(
    request: Request, difficulty: str | None = None, type: str | None = None, section: str | None = None
) -> HTMLResponse:
    """Sections × question types with practiced / cold / due counts, filtered by difficulty and type."""
    t = trainer_of(request)
    types: tuple[str, ...] = get_args(QuestionType)
    difficulty = _choice(difficulty, get_args(Difficulty), "difficulty")
    qtype = _choice(type, types, "type")
    section = _choice(section, tuple(SECTIONS), "section")
    chosen = t.bank.filter(difficulties=[difficulty] if difficulty else (), types=[qtype] if qtype else ())
    with t.store() as store:
        states = t.states(store)
    cells: dict[tuple[str, str], list[QuestionState]] = defaultdict(list)
    for q in chosen:
        cells[(q.section, q.type)].append(states[q.id])
    shown_types = [ty for ty in types if any(key[1] == ty for key in cells)]
    listed: list[tuple[Question, QuestionState]] = [
        (q, states[q.id]) for q in chosen if section is None or q.section == section
    ]
    return page(
        "map.html",
        title="Map",
        sections=SECTIONS,
        types=shown_types,
        all_types=types,
        difficulties=get_args(Difficulty),
        cells=cells,
        difficulty=difficulty or "",
        qtype=qtype or "",
        section=section or "",
        listed=listed,
    )


@router.get("/card/{question_id}", response_class=HTMLResponse)
def card(request: Request, question_id: str) -> HTMLResponse:
    """One question; the answer, explanation, mistakes, sources and demonstrations behind a reveal."""
    t = trainer_of(request)
    question = t.bank[question_id]
    with t.store() as store:
        state = t.states(store)[question.id]
    runs = run_it(question.id, t.config.lab_dir)
    return page("card.html", title=question.id, q=question, state=state, voice=voice_status(), runs=runs)


@router.get("/lab/{name}.png")
def lab_figure(request: Request, name: str) -> FileResponse:
    """The figure `tfdojo lab run NAME` left in the lab folder; 404 for a name outside the catalog or no run yet."""
    try:
        path = figure_of(name, trainer_of(request).config.lab_dir)  # the file name comes from the catalog
    except ConfigError:
        path = None
    if path is None:
        raise HTTPException(404, f"no figure for {name!r}: run `tfdojo lab run NAME` first")
    return FileResponse(path, media_type="image/png")


@router.get("/history", response_class=HTMLResponse)
def history(request: Request) -> HTMLResponse:
    """Every attempt, newest first (the last 200)."""
    t = trainer_of(request)
    with t.store() as store:
        attempts = store.attempts()
    known = {q.id for q in t.bank}
    rows = attempts[::-1][:HISTORY_ROWS]
    opinions = any(a.second_opinion for a in rows)  # a column only when some attempt was judged (--judge)
    return page("history.html", title="History", rows=rows, total=len(attempts), known=known, opinions=opinions)
