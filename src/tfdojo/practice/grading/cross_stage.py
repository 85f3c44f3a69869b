"""The cross stage: the cross-encoder (``cross_encoder.py``) reads each key point with the answer's sentences about it
and re-decides which points the answer states and which it states wrongly.

    for each key point k, the sentences with a clause near k (similarity to k or an alias >= ``floor``, or an alias
    said), at most ``cap`` of them, closest first
      -> P(states), P(contradicts), P(neither) of (k, sentence)
      -> k is stated when some sentence has P(states) >= ``states``; contradicted when none states it and a
         sentence that states no key point has P(contradicts) >= ``contradicts``
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
    """The pairs the cross-encoder read: (key point, sentence, P(states), P(contradicts)), decided under
    ``thresholds``. A sentence that states some key point contradicts none: it is about that point (a sentence
    stating one point is often read as contradicting its neighbour)."""

    sentences: tuple[str, ...]
    pairs: tuple[tuple[int, int, float, float], ...]
    thresholds: CrossThresholds

    def best_states(self, k: int) -> tuple[float, str | None]:
        """The highest P(states) of point k over the sentences read with it, and that sentence."""
        rows = [(p, self.sentences[s]) for j, s, p, _ in self.pairs if j == k]
        return max(rows, default=(0.0, None), key=lambda r: r[0])

    def best_contradicts(self, k: int) -> tuple[float, str | None]:
        """The highest P(contradicts) of point k over the sentences read with it that state no point."""
        stating = {s for _, s, p, _ in self.pairs if p >= self.thresholds.states}
        rows = [(c, self.sentences[s]) for j, s, _, c in self.pairs if j == k and s not in stating]
        return max(rows, default=(0.0, None), key=lambda r: r[0])

    def stated(self, k: int) -> bool:
        return self.best_states(k)[0] >= self.thresholds.states

    def contradicted(self, k: int) -> bool:
        return not self.stated(k) and self.best_contradicts(k)[0] >= self.thresholds.contradicts


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
    probs: list[list[float]] = []
    if pairs:
        probs = cross.probabilities([points[k].text for k, _ in pairs], [sentences[s] for _, s in pairs]).tolist()
    read = tuple((k, s, p[0], p[1]) for (k, s), p in zip(pairs, probs, strict=True))  # (P, 3) -> rows
    return CrossReading(tuple(sentences), read, thresholds)


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
            p, sentence = reading.best_states(k)
            status, match = "covered", PointMatch(point, sentence, match.similarity, match.by_alias, cross=p)
        elif reading.contradicted(k):
            p, sentence = reading.best_contradicts(k)
            status, match = "contradicted", PointMatch(point, sentence, match.similarity, cross=p)
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
    unstated = [reading.best_contradicts(k)[0] for k in range(len(points)) if not reading.stated(k)]
    return [
        sum(p.weight * reading.best_states(k)[0] for k, p in enumerate(points)) / total,
        sum(p.weight for k, p in enumerate(points) if reading.stated(k)) / total,
        max(unstated, default=0.0),
        float(sum(reading.contradicted(k) for k in range(len(points)))),
    ]
