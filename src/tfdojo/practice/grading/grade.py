"""What the free-text grader returns: a verdict, a score, and the evidence behind each key point."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from tfdojo.practice.rubric import KeyPoint, Misconception

Verdict = Literal["correct", "partial", "incorrect", "uncertain"]
ShownLabel = Literal["correct", "partial", "incorrect"]


@dataclass(frozen=True)
class PointMatch:
    """A key point and the clause of the answer that came closest to it (None when the answer had no clauses).

    ``by_alias`` is True when one of the point's aliases occurs in the clause; ``similarity`` is the cosine
    similarity of the clause and the point's text either way. For a *contradicted* point, ``contrast`` is the wrong
    claim the clause was closer to (the point with two terms exchanged, or a wrong claim the rubric lists) and
    ``contrast_similarity`` its similarity to the clause. ``cross`` is set when the cross-encoder decided the status
    (``cross_stage.py``): its probability that ``clause`` (then a whole sentence) states the point (covered) or
    contradicts it (contradicted).
    """

    point: KeyPoint
    clause: str | None
    similarity: float
    by_alias: bool = False
    contrast: str | None = None
    contrast_similarity: float | None = None
    cross: float | None = None

    def why(self, status: str) -> dict[str, Any]:
        """This match as JSON-able data, with the status (covered, missed, uncertain, contradicted) it was given."""
        out: dict[str, Any] = {
            "point": self.point.text,
            "weight": self.point.weight,
            "status": status,
            "sentence": self.clause,
            "similarity": round(self.similarity, 3),
            "by_alias": self.by_alias,
        }
        if self.contrast is not None:
            out["contrast"] = self.contrast
            out["contrast_similarity"] = round(self.contrast_similarity or 0.0, 3)
        if self.cross is not None:
            out["decided_by"] = "cross-encoder"
            out["cross_probability"] = round(self.cross, 3)
        return out


@dataclass(frozen=True)
class MisconceptionMatch:
    """A misconception the answer states, with the clause that states it and its similarity."""

    misconception: Misconception
    clause: str
    similarity: float
    by_alias: bool = False

    def why(self) -> dict[str, Any]:
        """This match as JSON-able data."""
        return {
            "misconception": self.misconception.text,
            "sentence": self.clause,
            "similarity": round(self.similarity, 3),
            "by_alias": self.by_alias,
            "feedback": self.misconception.feedback,
        }


@dataclass(frozen=True)
class Decision:
    """How the label was reached: by the verdict head (with its two probabilities) or by the score cut-offs, how
    many stated errors (misconceptions, contradicted points) lowered it, and whether the cross-encoder read the answer
    (the number of pairs it read; the head is then the one fit with its numbers)."""

    by: str  # "head" | "cut-offs"
    errors: int = 0
    p_at_least_partial: float | None = None
    p_correct: float | None = None
    cross_pairs: int | None = None  # (key point, sentence) pairs the cross-encoder read; None: it did not run

    def why(self) -> dict[str, Any]:
        """As JSON-able data."""
        probabilities = {}
        if self.p_correct is not None and self.p_at_least_partial is not None:
            probabilities = {
                "p_at_least_partial": round(self.p_at_least_partial, 3),
                "p_correct": round(self.p_correct, 3),
            }
        cross = {} if self.cross_pairs is None else {"cross_encoder_pairs": self.cross_pairs}
        return {"by": self.by, "stated_errors": self.errors, **probabilities, **cross}


@dataclass(frozen=True)
class Grade:
    """The grade of one free-text answer against a rubric.

    ``score`` is the covered key points' share of the rubric's weight (uncertain points count 0). ``uncertain``
    holds the points the answer seems to deny ("does not", "rather than", …): the grader cannot tell whether the
    answer is wrong or only phrased with a negation, so a person should look. ``feedback`` is text a learner can act on.

    ``shown`` is the 3-way label the trainer displays. It equals ``verdict`` except for an uncertain grade, which is
    shown as the grade its credited points alone earn (uncertain points are never silently credited), flagged for
    the learner to check.

    ``contradicted`` holds the points the answer states wrongly: a sentence about the point that is closer to a wrong
    version of it (two terms exchanged, "queries" for "keys and values") than to the point itself. Like a stated
    misconception, it costs a level. ``not_english`` marks an answer that was not graded because it is not in
    English (``feedback`` says so); ``keyword_salad`` one that lists terms without a claim.

    ``why()`` is the evidence behind the grade as JSON-able data (``to_json()`` serialises it): for every key point
    its status, the sentence of the answer that matched it (or came closest) and the similarity, plus the wrong claim
    it was closer to when contradicted; every misconception stated, with its sentence and similarity; and the
    reason an answer was not graded at all (``"empty"``, ``"keyword-salad"``, ``"not-english"``); and how the label was
    reached (``decision``: the verdict head with its probabilities, or the score cut-offs, and the stated errors).
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
    contradicted: tuple[PointMatch, ...] = ()
    not_english: bool = False
    decision: Decision | None = None  # None when the answer was not graded (empty, salad, not English)

    @property
    def ungraded(self) -> str | None:
        """Why no point was looked at ("empty", "keyword-salad", "not-english"), or None for a graded answer."""
        if self.not_english:
            return "not-english"
        if self.keyword_salad:
            return "keyword-salad"
        if not (self.covered or self.uncertain or self.contradicted or self.misconceptions):
            return "empty" if all(p.clause is None for p in self.missed) else None
        return None

    def why(self) -> dict[str, Any]:
        """The evidence behind the grade, as JSON-able data (see the class docstring)."""
        statuses = (
            ("covered", self.covered),
            ("contradicted", self.contradicted),
            ("uncertain", self.uncertain),
            ("missed", self.missed),
        )
        return {
            "verdict": self.verdict,
            "shown": self.shown,
            "score": round(self.score, 3),
            "language": "English",
            "ungraded": self.ungraded,
            "points": [m.why(status) for status, matches in statuses for m in matches],
            "misconceptions": [m.why() for m in self.misconceptions],
            "decision": self.decision.why() if self.decision else None,
            "feedback": self.feedback,
        }

    def to_json(self) -> str:
        """``why()`` as a JSON string (UTF-8 text, not ASCII-escaped)."""
        return json.dumps(self.why(), ensure_ascii=False)
