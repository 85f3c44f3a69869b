"""Grading a free-text answer against a rubric: clause-level semantic matching with a polarity guard.

    answer -> clauses (with negation) -> MiniLM embeddings -> cosine similarity to each key point / misconception
           -> a point is covered when an affirmed clause is close enough or says one of its aliases,
              uncertain when only a negated clause does, missed otherwise
           -> score = covered weight / total weight -> verdict

The thresholds were calibrated on the calibration half of ``bench/data/grading_answers.toml`` (see docs/grading.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from tfdojo.practice.grading.embedder import Embedder, default_embedder
from tfdojo.practice.grading.evidence import Evidence, collect_evidence
from tfdojo.practice.grading.feedback import EMPTY_ANSWER, salad_feedback, write_feedback
from tfdojo.practice.grading.grade import Grade, MisconceptionMatch, PointMatch, Verdict
from tfdojo.practice.grading.salad import salad_terms
from tfdojo.practice.grading.words import content_stems
from tfdojo.practice.rubric import Rubric


@dataclass(frozen=True)
class Thresholds:
    """Where the grader draws its lines; the defaults are the calibrated ones.

    point: cosine similarity from which a clause states a key point; misconception: likewise for a misconception
    (which must also be closer than any key point); correct / partial: the score from which a verdict is given.
    """

    point: float = 0.55
    misconception: float = 0.6
    correct: float = 0.7
    partial: float = 0.3

    def __post_init__(self) -> None:
        if not 0 < self.partial <= self.correct <= 1:
            raise ValueError(f"need 0 < partial <= correct <= 1, got partial={self.partial}, correct={self.correct}")


DEFAULT_THRESHOLDS = Thresholds()


def _misconception_matches(evidence: Evidence, t: Thresholds) -> tuple[list[MisconceptionMatch], set[int]]:
    """The misconceptions stated in affirmed clauses, and the clauses that state one (they support no key point)."""
    matches, claimed = [], set()
    points, miscon = evidence.point_similarity, evidence.misconception_similarity
    for m, misconception in enumerate(evidence.rubric.misconceptions):
        best: MisconceptionMatch | None = None
        for c, clause in enumerate(evidence.candidates):
            sim = float(miscon[c, m])
            closest_point = float(points[c].max()) if points.shape[1] else 0.0
            by_alias = bool(evidence.misconception_alias[c, m])
            if clause.negated or not (by_alias or (sim >= t.misconception and sim >= closest_point)):
                continue
            claimed.add(c)
            if best is None or sim > best.similarity:
                best = MisconceptionMatch(misconception, clause.text, sim, by_alias)
        if best is not None:
            matches.append(best)
    return matches, claimed


def _point_match(evidence: Evidence, k: int, rows: list[int]) -> PointMatch | None:
    """The best of the given candidate rows for key point k (an alias match first), or None if there are none."""
    if not rows:
        return None
    sims = evidence.point_similarity[:, k]
    best = max(rows, key=lambda c: (bool(evidence.point_alias[c, k]), float(sims[c])))
    point = evidence.rubric.key_points[k]
    return PointMatch(point, evidence.candidates[best].text, float(sims[best]), bool(evidence.point_alias[best, k]))


def _level(score: float, t: Thresholds, capped: bool) -> Verdict:
    """The verdict a score earns; a stated misconception caps it at partial."""
    if score >= t.correct and not capped:
        return "correct"
    return "partial" if score >= t.partial else "incorrect"


def decide(evidence: Evidence, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> Grade:
    """The grade that the evidence earns under the given thresholds (no model call: thresholds can be swept)."""
    t = thresholds
    misconceptions, claimed = _misconception_matches(evidence, t)
    covered, missed, uncertain = [], [], []
    everyone = list(range(len(evidence.candidates)))
    for k in range(len(evidence.rubric.key_points)):

        def passes(c: int, k: int = k) -> bool:
            return bool(evidence.point_alias[c, k]) or float(evidence.point_similarity[c, k]) >= t.point

        affirmed = [c for c in everyone if not evidence.candidates[c].negated and c not in claimed and passes(c)]
        denied = [c for c in everyone if evidence.candidates[c].negated and passes(c)]
        if affirmed:
            covered.append(_point_match(evidence, k, affirmed))
        elif denied:
            uncertain.append(_point_match(evidence, k, denied))
        else:
            missed.append(_point_match(evidence, k, everyone) or PointMatch(evidence.rubric.key_points[k], None, 0.0))
    total = evidence.rubric.total_weight
    score = sum(p.point.weight for p in covered) / total
    hopeful = score + sum(p.point.weight for p in uncertain) / total
    capped = bool(misconceptions)
    verdict = _level(score, t, capped)
    if _level(hopeful, t, capped) != verdict:
        verdict = "uncertain"
    feedback = write_feedback(verdict, covered, missed, uncertain, misconceptions)
    return Grade(verdict, score, tuple(covered), tuple(missed), tuple(uncertain), tuple(misconceptions), feedback)


def _ungraded(rubric: Rubric, feedback: str, *, salad: bool = False) -> Grade:
    """An incorrect grade that credits nothing (empty answer, keyword salad)."""
    missed = tuple(PointMatch(p, None, 0.0) for p in rubric.key_points)
    return Grade("incorrect", 0.0, (), missed, (), (), feedback, keyword_salad=salad)


def grade_free_text(
    rubric: Rubric, answer: str, *, embedder: Embedder | None = None, thresholds: Thresholds = DEFAULT_THRESHOLDS
) -> Grade:
    """Grade a free-text answer against a rubric (MiniLM clause matching with a negation guard).

    ``embedder`` defaults to the bundled all-MiniLM-L6-v2, loaded once per process on first use. An empty answer
    and a keyword list without claims are graded incorrect before any model call.
    """
    if not answer.strip():
        return _ungraded(rubric, EMPTY_ANSWER)
    vocabulary = content_stems([p.text for p in rubric.key_points] + [a for p in rubric.key_points for a in p.aliases])
    terms = salad_terms([answer], vocabulary)
    if terms:
        return _ungraded(rubric, salad_feedback(terms), salad=True)
    evidence = collect_evidence(rubric, answer, embedder or default_embedder())
    return decide(evidence, thresholds)
