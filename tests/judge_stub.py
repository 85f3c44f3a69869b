"""A stand-in judge for the --judge tests: http.server speaking the OpenAI shape, on a free loopback port, in a thread.

``reply`` is what each chat completion returns: a string is sent as the message content, a ``(status, body)``
or ``(status, body, headers)`` tuple as the raw HTTP reply; ``delay`` makes it slow. Every request is kept in
``requests``.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class StubJudge:
    url: str = ""
    models: list[str] = field(default_factory=lambda: ["judge-a", "judge-b"])
    reply: str | tuple = '{"verdict": "correct", "reason": "It states every key point."}'
    delay: float = 0.0
    requests: list[Seen] = field(default_factory=list)

    def chats(self) -> list[Seen]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]


def _handler(stub: StubJudge) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client that timed out has left
                self.wfile.write(body)

        def _seen(self, body: Any) -> None:
            stub.requests.append(Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body))

        def do_GET(self) -> None:
            self._seen(None)
            if self.path == "/v1/models":
                self._send(200, json.dumps({"object": "list", "data": [{"id": m} for m in stub.models]}).encode())
            else:
                self._send(404, b'{"error": {"message": "no such route"}}')

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")
            self._seen(body)
            time.sleep(stub.delay)
            if not self.path.endswith("/chat/completions"):
                self._send(404, b'{"error": {"message": "no such route"}}')
            elif isinstance(stub.reply, tuple):
                self._send(*stub.reply)
            else:
                message = {"role": "assistant", "content": stub.reply}
                self._send(200, json.dumps({"object": "chat.completion", "choices": [{"message": message}]}).encode())

    return Handler


@contextmanager
def stub_judge(**fields: Any) -> Iterator[StubJudge]:
    """A running stub; its ``url`` is the server root (no /v1)."""
    stub = StubJudge(**fields)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(stub))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    stub.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
