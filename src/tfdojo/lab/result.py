"""What one lab experiment hands back: the claim, whether the measured numbers bear it out, and its figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Finding:
    """An experiment module's measurement: ``holds`` is an assertion over ``numbers``, never a constant."""

    holds: bool
    numbers: dict[str, Any]
    figures: list[str] = field(default_factory=list)


@dataclass
class LabResult:
    """A finding with its claim attached, as written to ``DIR/NAME.json`` by ``tfdojo lab run``."""

    name: str
    claim: str
    method: str
    holds: bool
    numbers: dict[str, Any]
    figures: list[str]
    questions: list[str]
    quick: bool
    seconds: float

    def to_json(self) -> dict[str, Any]:
        """A plain dict ready for ``json.dumps``."""
        return asdict(self)
