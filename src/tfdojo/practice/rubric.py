"""What a good answer must say: weighted key points (with aliases) and misconceptions to catch."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class KeyPoint(BaseModel):
    """One idea a good answer states; ``aliases`` are short phrasings that count as stating it outright.

    ``follow_up`` is the probing question a mock interviewer asks when an answer leaves the point out (it must not
    give the point away).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=3)
    weight: float = Field(default=1.0, gt=0)
    aliases: tuple[str, ...] = ()
    follow_up: str = ""


class Misconception(BaseModel):
    """A wrong idea people often state; ``feedback`` says why it is wrong."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field(min_length=3)
    aliases: tuple[str, ...] = ()
    feedback: str = ""


class Rubric(BaseModel):
    """Key points (weights need not sum to 1; they are normalised) and the misconceptions to watch for."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key_points: tuple[KeyPoint, ...] = Field(min_length=1)
    misconceptions: tuple[Misconception, ...] = ()

    @field_validator("misconceptions", mode="before")
    @classmethod
    def _strings_are_misconceptions(cls, value: Any) -> Any:
        """Allow a bare string where a misconception has no aliases or feedback."""
        if isinstance(value, list | tuple):
            return [{"text": v} if isinstance(v, str) else v for v in value]
        return value

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Rubric:
        """``{"key_points": [{"text", "weight", "aliases"}], "misconceptions": [str | {"text", ...}]}``."""
        return cls.model_validate(data)

    @property
    def total_weight(self) -> float:
        """Sum of the key points' weights (the score's denominator)."""
        return sum(p.weight for p in self.key_points)
