"""The question bank's schema: one pydantic model per question, validated when the bank is loaded."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tfdojo.practice.rubric import Rubric

SECTIONS: dict[str, str] = {
    "core-architecture": "Core architecture",
    "attention-maths": "Attention maths",
    "norms-residuals": "Normalization and residuals",
    "positions": "Positions",
    "encoder-decoder": "Encoder / decoder and objectives",
    "efficient-attention": "Efficient and long-context attention",
    "inference-serving": "Inference and serving",
    "training-stability": "Training and stability",
    "distributed-scaling": "Distributed training and scaling",
    "moe": "Mixture of Experts",
    "tokenization": "Tokenization",
    "system-design": "System design",
}
Section = Literal[
    "core-architecture",
    "attention-maths",
    "norms-residuals",
    "positions",
    "encoder-decoder",
    "efficient-attention",
    "inference-serving",
    "training-stability",
    "distributed-scaling",
    "moe",
    "tokenization",
    "system-design",
]
QuestionType = Literal["conceptual", "numeric", "coding", "system-design", "research", "optimization"]
Difficulty = Literal["easy", "medium", "hard"]
LinkKind = Literal["code", "calc", "doc", "test", "bench"]


class Source(BaseModel):
    """A paper, documentation page or book section the answer rests on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = Field(min_length=3)
    url: str = Field(pattern=r"^https?://")


class Link(BaseModel):
    """Where tfdojo demonstrates the answer.

    kind = "code": a dotted import path (``tfdojo.nn.attention.scaled_dot_product``);
    "calc": a ``tfdojo calc …`` command line; "doc" / "test" / "bench": a path in the repository
    (``docs/calc.md``, ``tests/nn/test_tiled.py``, ``bench/attention.py``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: LinkKind
    target: str = Field(min_length=3)


class NumericAnswer(BaseModel):
    """The value a numeric question expects, computed by a calculator of ``tfdojo.calc.claims.CALCULATORS``.

    ``part`` picks one entry of the result's breakdown; ``tolerance`` is relative (0.05 = within 5 %).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    call: str
    args: dict[str, Any] = Field(default_factory=dict)
    part: str | None = None
    tolerance: float = Field(default=0.05, gt=0, lt=1)


class Question(BaseModel):
    """One question with everything needed to ask it, grade it and teach from it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=64)
    section: Section
    type: QuestionType
    difficulty: Difficulty
    minutes: int = Field(ge=1, le=60, description="expected minutes to answer aloud or in writing")
    grill: bool = False
    prompt: str = Field(min_length=10)
    short_answer: str = Field(min_length=10)
    explanation: str = Field(min_length=40)
    mistakes: tuple[str, ...] = Field(min_length=1)
    sources: tuple[Source, ...] = Field(min_length=1)
    rubric: Rubric
    links: tuple[Link, ...] = Field(min_length=1)
    numeric: NumericAnswer | None = None
    tags: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Question:
        """Numeric questions say how their value is computed; rubrics hold 3–6 key points."""
        if (self.type == "numeric") != (self.numeric is not None):
            raise ValueError("a numeric question needs a [numeric] table, and only a numeric question may have one")
        if not 3 <= len(self.rubric.key_points) <= 6:
            raise ValueError(f"the rubric needs 3–6 key points, it has {len(self.rubric.key_points)}")
        return self
