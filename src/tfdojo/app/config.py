"""The web trainer's settings: where it listens, who may use it, where progress lives, and the size caps."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from tfdojo.errors import ConfigError
from tfdojo.lab.links import LAB_DIR
from tfdojo.practice.grading.judge import JudgeConfig
from tfdojo.practice.session import MAX_ANSWER_CHARS

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


@dataclass(frozen=True)
class Limits:
    """Caps on what a request may carry; each is checked with a message saying the cap and what to do."""

    answer_chars: int = MAX_ANSWER_CHARS  # the terminal drill's cap: grading time grows with the answer's length
    code_bytes: int = 64 * 1024
    audio_bytes: int = 8 * 1024 * 1024
    audio_seconds: float = 120.0
    import_bytes: int = 20 * 1024 * 1024

    @property
    def body_bytes(self) -> int:
        """The largest request body accepted at all (the biggest upload plus room for the form around it)."""
        return max(self.audio_bytes, self.import_bytes, self.code_bytes, self.answer_chars * 4) + 64 * 1024


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1 or "localhost")."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class WebConfig:
    """How the trainer is served. A host other than loopback needs a ``token`` (anyone on the network could connect).

    ``judge``: an OpenAI-compatible server asked for a second opinion on free-text answers (shown, never graded by).
    ``cross``: free-text answers are read by the cross-encoder too (``grading/cross_stage.py``; docs/grading.md).
    ``lab_dir``: where `tfdojo lab run` left its figures, shown on the cards of the questions they answer.
    """

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = None
    data_dir: Path | None = None
    bank_dir: Path | None = None
    limits: Limits = field(default_factory=Limits)
    judge: JudgeConfig | None = None
    cross: bool = False
    lab_dir: Path = LAB_DIR

    def __post_init__(self) -> None:
        if not is_loopback(self.host) and not self.token:
            raise ConfigError(
                f"--host {self.host} would let other machines reach your trainer; pass --token SECRET as well "
                "(then open the page with ?token=SECRET), or keep the default --host 127.0.0.1"
            )
        if self.token is not None and len(self.token) < 8:
            raise ConfigError("--token must be at least 8 characters; use a long random string")
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"--port {self.port} is not a TCP port (0 to 65535)")

    @property
    def allowed_hosts(self) -> frozenset[str] | None:
        """The Host headers accepted (stops DNS rebinding); None when a token guards the server instead."""
        if self.token:
            return None
        names = {self.host, "127.0.0.1", "localhost", "[::1]"}
        return frozenset(f"{n}:{self.port}" for n in names)
