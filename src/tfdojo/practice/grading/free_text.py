"""Grading a free-text answer against a rubric: clause-level semantic matching with a polarity guard.

    answer -> English? -> clauses (with negation) -> MiniLM embeddings (symbols read out)
           -> cosine similarity to each key point, its aliases, its contrasts (wrong versions) and misconceptions
           -> a point is covered when an affirmed clause is close enough (or says one of its aliases) and is not
              closer to one of the point's contrasts; contradicted when a clause is; uncertain when only a negated
              clause supports it; missed otherwise
           -> score = covered weight / total weight -> verdict, one level lower per stated error (misconception or
              contradicted point), two when there are several

The thresholds were tuned on half of the calibration questions of ``bench/data/grading_answers.toml`` (docs/grading.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from tfdojo.infer.encoder import Encoder
from tfdojo.practice.grading.embedder import Embedder, default_embedder
from tfdojo.practice.grading.evidence import Evidence, collect_evidence, reference_embeddings
from tfdojo.practice.grading.feedback import EMPTY_ANSWER, salad_feedback, write_feedback
from tfdojo.practice.grading.grade import Grade, MisconceptionMatch, PointMatch, ShownLabel, Verdict
from tfdojo.practice.grading.language import NOT_ENGLISH, is_english
from tfdojo.practice.grading.salad import salad_terms
from tfdojo.practice.grading.verifier import Verifier, default_verifier
from tfdojo.practice.grading.words import content_stems
from tfdojo.practice.rubric import KeyPoint, Rubric


@dataclass(frozen=True)
class Thresholds:
    """Where the grader draws its lines; the defaults are the calibrated ones.

    point: cosine similarity from which a clause states a key point. margin: a clause supports only the key points
    within this much of its closest one (one topical sentence should not cover every point). misconception: the
    similarity from which a clause states a misconception (it must also be closer to it than to any key point).
    correct / partial: the score from which each grade is given. alias: the similarity to one of a point's aliases
    from which a clause states the point. contrast: how much closer to a wrong version of a point than to the point
    (and its aliases) a clause must be to contradict it. severe: from this many stated errors the grade drops two
    levels instead of one. With the verifier (``verifier.py``): entail is the P(entails) a clause the embedder
    finds close must also have to support a point; contradict the P(contradicts) from which a clause contradicts
    it; entail_alone the P(entails) from which a clause supports a point however far the embedder puts them.
    """

    point: float = 0.38
    margin: float = 0.1
    misconception: float = 0.75
    correct: float = 0.90
    partial: float = 0.05
    alias: float = 0.75
    contrast: float = 0.005
    severe: int = 2
    entail: float = 0.0
    contradict: float = 1.01
    entail_alone: float = 1.01

    def __post_init__(self) -> None:
        if not 0 < self.partial <= self.correct <= 1:
            raise ValueError(f"need 0 < partial <= correct <= 1, got partial={self.partial}, correct={self.correct}")


DEFAULT_THRESHOLDS = Thresholds()


def _misconception_matches(evidence: Evidence, t: Thresholds) -> tuple[list[MisconceptionMatch], set[int]]:
    """The misconceptions stated in affirmed clauses, and the candidates that state one (they support no key point).

    A sentence made of several clauses is claimed as soon as one of its clauses is.
    """
    matches, claimed_clauses = [], set()
    closest_point = evidence.point_similarity.max(dim=1).values.tolist()
    sims, aliases = evidence.misconception_similarity.T.tolist(), evidence.misconception_alias.T.tolist()
    rubric = evidence.rubric
    for misconception, row, alias_row, negative in zip(
        rubric.misconceptions, sims, aliases, evidence.misconception_negated, strict=True
    ):
        best: MisconceptionMatch | None = None
        for c, clause in enumerate(evidence.candidates):
            stated = alias_row[c] or (row[c] >= t.misconception and row[c] >= closest_point[c])
            if (clause.negated and not negative) or not stated:
                continue
            claimed_clauses.update(evidence.parts[c])
            if best is None or row[c] > best.similarity:
                best = MisconceptionMatch(misconception, clause.text, row[c], alias_row[c])
        if best is not None:
            matches.append(best)
    claimed = {c for c, parts in enumerate(evidence.parts) if claimed_clauses & set(parts)}
    return matches, claimed


LEVELS: tuple[ShownLabel, ...] = ("incorrect", "partial", "correct")


def level(score: float, errors: int, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> ShownLabel:
    """The grade a score earns; a stated error (misconception, contradicted point) costs one level, several two."""
    rank = 2 if score >= thresholds.correct else 1 if score >= thresholds.partial else 0
    penalty = 0 if errors == 0 else 1 if errors < thresholds.severe else 2
    return LEVELS[max(rank - penalty, 0)]


def decide(evidence: Evidence, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> Grade:
    """The grade that the evidence earns under the given thresholds (no model call: thresholds can be swept)."""
    t = thresholds
    misconceptions, claimed = _misconception_matches(evidence, t)
    sims, aliases = evidence.point_similarity.tolist(), evidence.point_alias.tolist()  # (C, K)
    alias_sims, contrast_sims = evidence.alias_similarity.tolist(), evidence.contrast_similarity.tolist()
    n_c, n_k = evidence.point_similarity.shape
    unread = [[float("nan")] * n_k for _ in range(n_c)]
    entails = evidence.entails.tolist() if evidence.entails is not None else unread
    against_p = evidence.contradicts.tolist() if evidence.contradicts is not None else unread
    closest = [max(row) for row in sims]

    def contradicts(c: int, k: int) -> bool:
        own = max(sims[c][k], alias_sims[c][k])
        swapped = not aliases[c][k] and contrast_sims[c][k] >= t.point and contrast_sims[c][k] > own + t.contrast
        return swapped or against_p[c][k] >= t.contradict  # NaN (not read) compares False

    covered, missed, uncertain, contradicted = [], [], [], []
    for k, point in enumerate(evidence.rubric.key_points):

        def supports(c: int, k: int = k) -> bool:
            close = sims[c][k] >= t.point and sims[c][k] >= closest[c] - t.margin
            near = aliases[c][k] or close or alias_sims[c][k] >= t.alias
            verified = not entails[c][k] < t.entail  # an unread pair is not held against the clause
            return ((near and verified) or entails[c][k] >= t.entail_alone) and not contradicts(c, k)

        def best(rows: list[int], k: int = k, point: KeyPoint = point) -> PointMatch:
            c = max(rows, key=lambda c: (aliases[c][k], sims[c][k]))
            return PointMatch(point, evidence.candidates[c].text, sims[c][k], aliases[c][k])

        def against(rows: list[int], k: int = k, point: KeyPoint = point) -> PointMatch:
            c = max(rows, key=lambda c: contrast_sims[c][k])
            wrong = evidence.contrast_text[c][k]
            return PointMatch(point, evidence.candidates[c].text, sims[c][k], False, wrong, contrast_sims[c][k])

        rows = range(len(evidence.candidates))
        # A negated clause denies a point unless the point is itself a negative claim ("uses no causal mask").
        agrees = [not evidence.candidates[c].negated or evidence.point_negated[k] for c in rows]
        affirmed = [c for c in rows if supports(c) and agrees[c] and c not in claimed]
        wrong = [c for c in rows if contradicts(c, k) and not evidence.candidates[c].negated]
        denied = [c for c in rows if supports(c) and not agrees[c]]
        if affirmed:
            covered.append(best(affirmed))
        elif wrong:
            contradicted.append(against(wrong))
        elif denied:
            uncertain.append(best(denied))
        else:
            missed.append(best(list(rows)) if rows else PointMatch(point, None, 0.0))
    total = evidence.rubric.total_weight
    score = sum(p.point.weight for p in covered) / total
    hopeful = score + sum(p.point.weight for p in uncertain) / total
    errors = len(misconceptions) + len(contradicted)
    shown = level(score, errors, t)
    verdict: Verdict = shown if level(hopeful, errors, t) == shown else "uncertain"
    feedback = write_feedback(verdict, covered, missed, uncertain, misconceptions, contradicted)
    return Grade(
        verdict,
        score,
        tuple(covered),
        tuple(missed),
        tuple(uncertain),
        tuple(misconceptions),
        feedback,
        shown=shown,
        contradicted=tuple(contradicted),
    )


def _ungraded(rubric: Rubric, feedback: str, *, salad: bool = False, not_english: bool = False) -> Grade:
    """An incorrect grade that credits nothing (empty answer, keyword salad, not English)."""
    missed = tuple(PointMatch(p, None, 0.0) for p in rubric.key_points)
    return Grade(
        "incorrect", 0.0, (), missed, (), (), feedback, shown="incorrect", keyword_salad=salad, not_english=not_english
    )


def screen(rubric: Rubric, answer: str) -> Grade | None:
    """The grade of an answer that needs no model (empty, not English, a keyword list without claims), else None."""
    if not answer.strip():
        return _ungraded(rubric, EMPTY_ANSWER)
    if not is_english(answer):
        return _ungraded(rubric, NOT_ENGLISH, not_english=True)
    vocabulary = content_stems([p.text for p in rubric.key_points] + [a for p in rubric.key_points for a in p.aliases])
    terms = salad_terms(answer, vocabulary)
    return _ungraded(rubric, salad_feedback(terms), salad=True) if terms else None


def warm_rubric(rubric: Rubric, *, embedder: Embedder | None = None) -> None:
    """Embed a rubric's key points and misconceptions ahead of time (call it when the question is shown)."""
    reference_embeddings(rubric, embedder or default_embedder())


def grade_free_text(
    rubric: Rubric,
    answer: str,
    *,
    embedder: Embedder | None = None,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    verifier: Verifier | None | bool = True,
) -> Grade:
    """Grade a free-text answer, written in English, against a rubric (MiniLM clause matching with a negation guard
    and contrastive key points).

    ``Grade.why()`` / ``Grade.to_json()`` give the evidence: which sentence matched which point or misconception,
    with its similarity. An answer that is not in English is not graded: ``Grade.not_english`` is set and the
    feedback says answers must be in English.

    ``embedder`` defaults to the bundled all-MiniLM-L6-v2, loaded once per process on first use. An empty answer
    and a keyword list without claims are graded incorrect before any model call. ``verifier``: True (the default)
    uses the cross-encoder (on the bundled MiniLM) when its weights are built, unless ``embedder`` is not an
    ``Encoder``; False or None grades with the embedder alone.
    """
    screened = screen(rubric, answer)
    if screened is not None:
        return screened
    if verifier is True:
        verifier = default_verifier() if embedder is None or isinstance(embedder, Encoder) else None
    return decide(collect_evidence(rubric, answer, embedder or default_embedder(), verifier or None), thresholds)
