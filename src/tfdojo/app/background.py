"""The trainer served from a background thread: ``with serve(config) as url``."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from tfdojo.app.config import WebConfig
from tfdojo.app.server import create_app
from tfdojo.app.trainer import Trainer

START_TIMEOUT_S = 30.0


@contextmanager
def serve(config: WebConfig, trainer: Trainer | None = None) -> Iterator[str]:
    """Serve the trainer on ``config.host:config.port`` until the block ends; yields its base URL."""
    app = create_app(config, trainer)
    server = uvicorn.Server(
        uvicorn.Config(app, host=config.host, port=config.port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name="tfdojo-web", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise RuntimeError(f"the trainer did not start on {config.host}:{config.port} (is the port free?)")
        time.sleep(0.02)
    try:
        yield f"http://{config.host}:{config.port}"
    finally:
        server.should_exit = True
        thread.join(10)
