"""The engine on its own thread, and asyncio queues that carry each request's tokens back to its handler.

    handler ──submit──► Engine inbox          engine thread: step() ─► events
    handler ◄──queue── loop.call_soon_threadsafe(dispatch, events)

The waiting queue is bounded (``QueueFullError`` -> HTTP 429); cancelling a request frees its blocks at the
engine's next step. Tokens/s is measured over a sliding window of recent steps.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque

from tfdojo.errors import TfdojoError
from tfdojo.infer.engine import Engine, Request, TokenEvent


class QueueFullError(TfdojoError):
    """The server's request queue is full; retry later."""


class EngineRunner:
    """Runs ``engine.step()`` in a daemon thread while there is work; routes events to per-request queues."""

    def __init__(self, engine: Engine, max_waiting: int = 64) -> None:
        self.engine, self.max_waiting = engine, max_waiting
        self._queues: dict[int, tuple[asyncio.AbstractEventLoop, asyncio.Queue[TokenEvent]]] = {}
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="tfdojo-engine", daemon=True)
        self._recent: deque[tuple[float, int]] = deque()  # (time, tokens) of recent steps
        self.tokens_generated = 0
        self.error: Exception | None = None  # the last exception a step raised

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Finish the current step and end the thread."""
        self._stop = True
        self._wake.set()
        self._thread.join(timeout=30)

    def submit(self, request: Request) -> asyncio.Queue[TokenEvent]:
        """Queue a request from the event loop; its events arrive on the returned queue (429 if the queue is full)."""
        if self.engine.stats()["waiting"] >= self.max_waiting:
            raise QueueFullError(
                f"the server's queue holds {self.max_waiting} waiting requests and is full; retry shortly"
            )
        queue: asyncio.Queue[TokenEvent] = asyncio.Queue()
        self._queues[request.id] = (asyncio.get_running_loop(), queue)
        self.engine.add(request)
        self._wake.set()
        return queue

    def cancel(self, request_id: int) -> None:
        """Stop a request (finished or not); its blocks are freed at the next step."""
        if self._queues.pop(request_id, None) is not None:
            self.engine.cancel(request_id)
            self._wake.set()

    def tokens_per_second(self, window_s: float = 10.0) -> float:
        """Tokens produced per second over the last ``window_s`` seconds."""
        now = time.perf_counter()
        recent = [n for t, n in list(self._recent) if now - t <= window_s]
        return sum(recent) / window_s

    def _loop(self) -> None:
        while not self._stop:
            if not self.engine.has_work:
                self._wake.wait(timeout=0.5)
                self._wake.clear()
                continue
            try:
                events = self.engine.step()
            except Exception as e:  # fail every open request (HTTP 500) rather than leave it waiting forever
                self.error = e
                events = [TokenEvent(request_id, -1, finish="error") for request_id in list(self._queues)]
                for request_id in list(self._queues):
                    self.engine.cancel(request_id)
            now = time.perf_counter()
            self._recent.append((now, len(events)))
            while self._recent and now - self._recent[0][0] > 60:
                self._recent.popleft()
            self.tokens_generated += len(events)
            for event in events:
                target = self._queues.get(event.request_id)
                if target is None:
                    continue
                loop, queue = target
                if event.finish is not None:
                    self._queues.pop(event.request_id, None)
                loop.call_soon_threadsafe(queue.put_nowait, event)
