"""The answer of every calculator: a value with its unit, and the derivation a person can check by hand."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Step:
    """One line of working: what is computed, the formula, the numbers put in, and the result."""

    what: str
    formula: str
    substituted: str
    value: float
    unit: str = ""


@dataclass(frozen=True)
class Result:
    """A computed quantity, how it was derived, and what was assumed along the way."""

    name: str
    value: float
    unit: str
    steps: tuple[Step, ...] = ()
    assumptions: tuple[str, ...] = ()
    parts: dict[str, float] = field(default_factory=dict)  # a breakdown that sums to value, where one exists

    def __float__(self) -> float:
        return float(self.value)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready form (used by ``--json`` on every ``tfdojo calc`` command)."""
        return {
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "parts": dict(self.parts),
            "steps": [dict(vars(s)) for s in self.steps],
            "assumptions": list(self.assumptions),
        }
