"""The trainer's front door, as ASGI middleware: Host check, token, same-origin POSTs and a body-size cap.

* Host: without a token only the loopback names and the configured port are served, so a web page that rebinds
  its own DNS name to 127.0.0.1 still cannot read the trainer (DNS rebinding).
* Token: with ``--token``, a first visit with ``?token=…`` sets a SameSite=Strict cookie; every other request
  without it is refused.
* CSRF: a POST must come from the trainer's own pages: its ``Origin`` (else its ``Referer``) must be this server.
  A form on another site that posts here is refused before any handler runs.
* Size: a body larger than the cap is refused from its Content-Length, or as soon as it grows past the cap.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from markupsafe import escape

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Defence in depth behind the escaping: only our own script runs, and no other site may frame the pages.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; "
        b"object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
TOKEN_COOKIE = "tfdojo_token"


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a body grows past the cap."""


async def _refuse(send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = f"<!doctype html><title>tfdojo: refused</title><p class=error>{escape(message)}</p>".encode()
    head = [(b"content-type", b"text/html; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    head += SECURITY_HEADERS
    await send({"type": "http.response.start", "status": status, "headers": head + (headers or [])})
    await send({"type": "http.response.body", "body": body})


def _with_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = list(message.get("headers", [])) + SECURITY_HEADERS
        await send(message)

    return sending


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


class Guard:
    """Wraps the app: every request passes the checks in the module docstring before it reaches a handler."""

    def __init__(self, app: ASGIApp, *, allowed_hosts: frozenset[str] | None, token: str | None, max_body: int) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.token = token
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if self.allowed_hosts is not None and host not in self.allowed_hosts:
            await _refuse(send, 400, f"unexpected Host {host!r}; open the trainer at http://127.0.0.1 on its port")
            return
        if self.token and not await self._token_ok(scope, headers, send):
            return
        if scope["method"] not in SAFE_METHODS:
            origin = headers.get("origin") or _origin_of(headers.get("referer", ""))
            if origin != f"{scope.get('scheme', 'http')}://{host}":
                shown = origin or "none"
                await _refuse(send, 403, f"cross-site request refused (origin {shown}); use the trainer's own pages")
                return
            length = headers.get("content-length")
            if length is not None and length.isdigit() and int(length) > self.max_body:
                await _refuse(send, 413, self._too_large(int(length)))
                return
        await self.app(scope, self._capped(receive), _with_headers(send))

    def _too_large(self, size: int) -> str:
        return f"the request is {size:,} bytes; the limit is {self.max_body:,} bytes — send something smaller"

    def _capped(self, receive: Receive) -> Receive:
        seen = 0

        async def capped() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise BodyTooLarge(self._too_large(seen))
            return message

        return capped

    async def _token_ok(self, scope: Scope, headers: dict[str, str], send: Send) -> bool:
        assert self.token is not None
        cookie = SimpleCookie(headers.get("cookie", ""))
        given = cookie[TOKEN_COOKIE].value if TOKEN_COOKIE in cookie else ""
        if given and hmac.compare_digest(given.encode(), self.token.encode()):
            return True
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        offered = query.pop("token", [""])[0]
        if offered and hmac.compare_digest(offered.encode(), self.token.encode()):
            rest = urlencode(query, doseq=True)
            location = scope["path"] + (f"?{rest}" if rest else "")
            cookie_header = f"{TOKEN_COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict".encode()
            await _refuse(
                send, 303, "token accepted", [(b"location", location.encode()), (b"set-cookie", cookie_header)]
            )
            return False
        await _refuse(send, 401, "this trainer needs its token: open it with ?token=YOUR_TOKEN once")
        return False
