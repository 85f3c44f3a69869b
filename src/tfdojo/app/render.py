"""Server-side HTML: Jinja2 templates shipped in the package, autoescaped, so user text reaches a page as text."""

from __future__ import annotations

from typing import Any

import jinja2
from fastapi.responses import HTMLResponse

from tfdojo.practice.schema import SECTIONS

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("tfdojo.app", "templates"),
    autoescape=True,  # every {{ value }} is HTML-escaped; nothing is marked safe except our own SVG
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.globals["SECTIONS"] = SECTIONS
RATING_NAMES = {1: "Again", 2: "Hard", 3: "Good", 4: "Easy"}
ENV.globals["RATING_NAMES"] = RATING_NAMES


def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render ``templates/name`` with ``context`` into a response."""
    return HTMLResponse(ENV.get_template(name).render(**context), status_code=status)


def error_page(message: str, status: int) -> HTMLResponse:
    """A page that says what went wrong and what to do (the message is escaped like any other text)."""
    return page("error.html", status, title="Something went wrong", message=message)
