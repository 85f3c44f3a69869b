"""What the free-text grader returns: a verdict, a score, and the evidence behind each key point."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tfdojo.practice.rubric import KeyPoint, Misconception

Verdict = Literal["correct", "partial", "incorrect", "uncertain"]
ShownLabel = Literal["correct", "partial", "incorrect"]


@dataclass(frozen=True)
class PointMatch:
    """A key point and the clause of the answer that came closest to it (None when the answer had no clauses).

    ``by_alias`` is True when one of the point's aliases occurs in the clause; ``similarity`` is the cosine
    similarity of the clause and the point's text either way.
    """

    point: KeyPoint
    clause: str | None
    similarity: float
    by_alias: bool = False


@dataclass(frozen=True)
class MisconceptionMatch:
    """A misconception the answer states, with the clause that states it and its similarity."""

    misconception: Misconception
    clause: str
    similarity: float
    by_alias: bool = False


@dataclass(frozen=True)
class Grade:
    """The grade of one free-text answer against a rubric.

    ``score`` is the covered key points' share of the rubric's weight (uncertain points count 0). ``uncertain``
    holds the points the answer seems to deny ("does not", "rather than", …): the grader cannot tell whether the
    answer is wrong or only phrased with a negation, so a person should look. ``feedback`` is text a learner can act on.

    ``shown`` is the 3-way label the trainer displays. It equals ``verdict`` except for an uncertain grade, which is
    shown as the grade its credited points alone earn (uncertain points are never silently credited), flagged for
    the learner to check.
    """

    verdict: Verdict
    score: float
    covered: tuple[PointMatch, ...]
    missed: tuple[PointMatch, ...]
    uncertain: tuple[PointMatch, ...]
    misconceptions: tuple[MisconceptionMatch, ...]
    feedback: str
    shown: ShownLabel
    keyword_salad: bool = False
