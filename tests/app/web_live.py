"""A trainer served by uvicorn on a free loopback port in a background thread, and a plain HTTP client for it."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlencode

from tfdojo.app import background
from tfdojo.app.config import WebConfig
from tfdojo.app.trainer import Trainer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003 - urllib's signature
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def http(
    method: str, url: str, data: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 120
) -> Reply:
    """One request; never follows redirects; 4xx/5xx come back as replies, not exceptions."""
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _opener.open(request, timeout=timeout) as r:
            return Reply(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read())
    except urllib.error.HTTPError as e:
        return Reply(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read())


@dataclass
class Live:
    url: str
    trainer: Trainer

    def get(self, path: str, **headers: str) -> Reply:
        return http("GET", self.url + path, headers=headers)

    def post(
        self, path: str, fields: dict[str, str] | None = None, origin: str | None = "same", **headers: str
    ) -> Reply:
        """A form POST; ``origin="same"`` sends this server's own Origin, None sends none."""

        head = {"Content-Type": "application/x-www-form-urlencoded", **headers}
        if origin is not None:
            head["Origin"] = self.url if origin == "same" else origin
        return http("POST", self.url + path, urlencode(fields or {}, doseq=True).encode(), head)


@contextmanager
def serve(config: WebConfig, trainer: Trainer | None = None) -> Iterator[Live]:
    """Serve ``config`` (its port must be free) until the block ends."""
    trainer = trainer or Trainer(config)
    with background.serve(config, trainer) as url:
        yield Live(url, trainer)
