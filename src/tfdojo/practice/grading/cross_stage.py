"""The cross stage: the cross-encoder (``cross_encoder.py``) reads each key point with the answer's sentences about it
and re-decides which points the answer states and which it states wrongly.

    for each key point k, the sentences with a clause near k (similarity to k or an alias >= ``floor``, or an alias
    said), at most ``cap`` of them, closest first
      -> P(states), P(contradicts), P(neither) of (k, sentence)
      -> k is stated when some sentence has P(states) >= ``states``; contradicted when none states it and one has
         P(contradicts) >= ``contradicts``
    fast assessment + these readings -> covered / contradicted / uncertain / missed (``reassess``)
                                     -> four more numbers for the verdict head (``head.CROSS_FEATURES``)

Each (point, sentence) pair is read on its own, so appending a sentence adds pairs and never removes a "states"
(credit is kept) — except past ``cap`` sentences per point, which only very long answers reach.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tfdojo.practice.grading.clauses import split_clauses, split_sentences
from tfdojo.practice.grading.cross_encoder import CrossEncoder
from tfdojo.practice.grading.evidence import Evidence
from tfdojo.practice.grading.grade import PointMatch
from tfdojo.practice.grading.head import Assessment


@dataclass(frozen=True)
class CrossThresholds:
    """Which sentences are read for a point (``floor``, ``cap``) and the probabilities that decide (``states``,
    ``contradicts``)."""

    floor: float = 0.3
    cap: int = 6
    states: float = 0.5
    contradicts: float = 0.5


DEFAULT_CROSS = CrossThresholds()


@dataclass(frozen=True)
class CrossReading:
    """Per key point: the best P(states) and P(contradicts) over the sentences read, and those sentences."""

    p_states: tuple[float, ...]
    p_contradicts: tuple[float, ...]
    stating: tuple[str | None, ...]
    contradicting: tuple[str | None, ...]
    pairs: int
    thresholds: CrossThresholds

    def stated(self, k: int) -> bool:
        return self.p_states[k] >= self.thresholds.states

    def contradicted(self, k: int) -> bool:
        return not self.stated(k) and self.p_contradicts[k] >= self.thresholds.contradicts


def sentence_of_candidates(answer: str) -> tuple[list[str], list[int]]:
    """The answer's sentences, and the sentence each clause belongs to (in ``evidence.candidate_clauses`` order)."""
    sentences = split_sentences(answer)
    owner = [i for i, s in enumerate(sentences) for _ in split_clauses(s)]
    return sentences, owner


def read_answer(
    evidence: Evidence, answer: str, cross: CrossEncoder, thresholds: CrossThresholds = DEFAULT_CROSS
) -> CrossReading:
    """Run the cross-encoder on each key point and the sentences near it (one batch for the whole answer)."""
    sentences, owner = sentence_of_candidates(answer)
    points = evidence.rubric.key_points
    near = evidence.point_similarity.maximum(evidence.alias_similarity)  # (C, K)
    near = near + evidence.point_alias.float()  # an alias said puts the sentence first
    pairs: list[tuple[int, int]] = []
    for k in range(len(points)):
        best: dict[int, float] = {}
        for c, part in enumerate(evidence.parts):
            s, value = owner[part[0]], float(near[c, k])
            if value >= thresholds.floor and value > best.get(s, -2.0):
                best[s] = value
        ranked = sorted(best, key=lambda s: -best[s])[: thresholds.cap]
        pairs.extend((k, s) for s in sorted(ranked))
    p_states, p_contra = [0.0] * len(points), [0.0] * len(points)
    stating: list[str | None] = [None] * len(points)
    contradicting: list[str | None] = [None] * len(points)
    if pairs:
        probs = cross.probabilities([points[k].text for k, _ in pairs], [sentences[s] for _, s in pairs])  # (P, 3)
        for (k, s), (states, contra, _) in zip(pairs, probs.tolist(), strict=True):
            if states > p_states[k]:
                p_states[k], stating[k] = states, sentences[s]
            if contra > p_contra[k]:
                p_contra[k], contradicting[k] = contra, sentences[s]
    return CrossReading(tuple(p_states), tuple(p_contra), tuple(stating), tuple(contradicting), len(pairs), thresholds)


def reassess(assessment: Assessment, reading: CrossReading, evidence: Evidence) -> Assessment:
    """The fast assessment with the cross-encoder's decisions: a point it reads as stated is covered, one it reads as
    contradicted (and stated nowhere) is contradicted; the others keep the fast path's status."""
    points = evidence.rubric.key_points
    by_point = {
        id(m.point): (status, m)
        for status, group in (
            ("covered", assessment.covered),
            ("missed", assessment.missed),
            ("uncertain", assessment.uncertain),
            ("contradicted", assessment.contradicted),
        )
        for m in group
    }
    out: dict[str, list[PointMatch]] = {"covered": [], "missed": [], "uncertain": [], "contradicted": []}
    for k, point in enumerate(points):
        status, match = by_point[id(point)]
        if reading.stated(k):
            status = "covered"
            match = PointMatch(point, reading.stating[k], match.similarity, match.by_alias, cross=reading.p_states[k])
        elif reading.contradicted(k):
            status = "contradicted"
            match = PointMatch(point, reading.contradicting[k], match.similarity, cross=reading.p_contradicts[k])
        out[status].append(match)
    score = sum(m.point.weight for m in out["covered"]) / evidence.rubric.total_weight
    return replace(
        assessment,
        covered=tuple(out["covered"]),
        missed=tuple(out["missed"]),
        uncertain=tuple(out["uncertain"]),
        contradicted=tuple(out["contradicted"]),
        score=score,
    )


def cross_features(reading: CrossReading, evidence: Evidence) -> list[float]:
    """``head.CROSS_FEATURES``: weighted mean P(states), weight share read as stated, the highest P(contradicts) of a
    point not stated, and the number of points read as contradicted."""
    points = evidence.rubric.key_points
    total = evidence.rubric.total_weight
    unstated = [reading.p_contradicts[k] for k in range(len(points)) if not reading.stated(k)]
    return [
        sum(p.weight * reading.p_states[k] for k, p in enumerate(points)) / total,
        sum(p.weight for k, p in enumerate(points) if reading.stated(k)) / total,
        max(unstated, default=0.0),
        float(sum(reading.contradicted(k) for k in range(len(points)))),
    ]
