"""Fixtures for the web trainer: a live server on a free port with its own progress folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from web_live import Live, free_port, serve

from tfdojo.app.config import WebConfig


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    """The trainer with an empty progress store, the real graders, on 127.0.0.1."""
    with serve(WebConfig(port=free_port(), data_dir=tmp_path)) as server:
        yield server
