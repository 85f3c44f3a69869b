"""The web trainer as a FastAPI app: the pages' routers behind the :class:`~tfdojo.app.security.Guard`."""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from tfdojo.app import coding_pages, drill_pages, mock_pages, pages, transfer_pages, voice_pages
from tfdojo.app.config import WebConfig
from tfdojo.app.render import error_page
from tfdojo.app.security import BodyTooLarge, Guard
from tfdojo.app.trainer import Trainer
from tfdojo.errors import InputTooLargeError, TfdojoError


def create_app(config: WebConfig | None = None, trainer: Trainer | None = None) -> Guard:
    """The ASGI app for ``config`` (``trainer`` lets tests substitute the grader or the clock)."""
    config = config or WebConfig()
    trainer = trainer or Trainer(config)
    app = FastAPI(title="tfdojo trainer", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.trainer = trainer
    app.mount("/static", StaticFiles(directory=str(files("tfdojo.app") / "static")), name="static")
    for module in (pages, drill_pages, coding_pages, mock_pages, transfer_pages, voice_pages):
        app.include_router(module.router)

    @app.exception_handler(TfdojoError)
    async def _tfdojo_error(_request: Request, exc: TfdojoError) -> HTMLResponse:
        return error_page(str(exc), 413 if isinstance(exc, InputTooLargeError) else 400)

    @app.exception_handler(BodyTooLarge)
    async def _too_large(_request: Request, exc: BodyTooLarge) -> HTMLResponse:
        return error_page(str(exc), 413)

    return Guard(app, allowed_hosts=config.allowed_hosts, token=config.token, max_body=config.limits.body_bytes)
