"""Grading a free-text answer against a rubric: clause-level semantic matching with a polarity guard.

    answer -> English? -> clauses (with negation) -> MiniLM embeddings (symbols read out)
           -> cosine similarity to each key point, its aliases, its contrasts (wrong versions) and misconceptions
           -> a point is covered when an affirmed clause is close enough (or says one of its aliases) and is not
              closer to one of the point's contrasts; contradicted when a clause is; uncertain when only a negated
              clause supports it; missed otherwise
           -> score = covered weight / total weight
           -> verdict: the verdict head (``head.py``, a logistic model over the evidence) when it is built and the
              embedder is the bundled MiniLM, else the score cut-offs; then one level lower per stated error
              (misconception or contradicted point), two when there are several
    cross stage (when the cross-encoder is built): it reads each key point with the sentences near it and
           re-decides covered / contradicted points (``cross_stage.py``); its own head adds four numbers

The thresholds were tuned on half of the calibration questions of ``bench/data/grading_answers.toml``, the head on
the calibration half (docs/grading.md).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from tfdojo.infer.encoder import Encoder
from tfdojo.practice.grading.cross_encoder import CrossEncoder, default_cross_encoder
from tfdojo.practice.grading.cross_stage import DEFAULT_CROSS, CrossThresholds, cross_features, read_answer, reassess
from tfdojo.practice.grading.embedder import Embedder, default_embedder
from tfdojo.practice.grading.evidence import Evidence, collect_evidence, reference_embeddings
from tfdojo.practice.grading.feedback import EMPTY_ANSWER, salad_feedback, write_feedback
from tfdojo.practice.grading.grade import Decision, Grade, MisconceptionMatch, PointMatch, ShownLabel, Verdict
from tfdojo.practice.grading.head import Assessment, VerdictHead, default_cross_head, default_head, verdict_features
from tfdojo.practice.grading.language import NOT_ENGLISH, is_english
from tfdojo.practice.grading.salad import salad_terms
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
    levels instead of one. correct / partial are not used when the verdict head decides.
    """

    point: float = 0.38
    margin: float = 0.1
    misconception: float = 0.75
    correct: float = 0.90
    partial: float = 0.05
    alias: float = 0.75
    contrast: float = 0.005
    severe: int = 2

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


def lower(label: ShownLabel, errors: int, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> ShownLabel:
    """A stated error (misconception, contradicted point) costs a grade one level, ``severe`` errors or more two."""
    penalty = 0 if errors == 0 else 1 if errors < thresholds.severe else 2
    return LEVELS[max(LEVELS.index(label) - penalty, 0)]


def level(score: float, errors: int, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> ShownLabel:
    """The grade a score earns, lowered for stated errors (``lower``)."""
    return lower(
        LEVELS[2 if score >= thresholds.correct else 1 if score >= thresholds.partial else 0], errors, thresholds
    )


def assess(evidence: Evidence, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> Assessment:
    """What the evidence credits under the given thresholds: covered, contradicted, uncertain and missed points."""
    t = thresholds
    misconceptions, claimed = _misconception_matches(evidence, t)
    sims, aliases = evidence.point_similarity.tolist(), evidence.point_alias.tolist()  # (C, K)
    alias_sims, contrast_sims = evidence.alias_similarity.tolist(), evidence.contrast_similarity.tolist()
    closest = [max(row) for row in sims]

    def contradicts(c: int, k: int) -> bool:
        own = max(sims[c][k], alias_sims[c][k])
        return not aliases[c][k] and contrast_sims[c][k] >= t.point and contrast_sims[c][k] > own + t.contrast

    covered, missed, uncertain, contradicted = [], [], [], []
    for k, point in enumerate(evidence.rubric.key_points):

        def supports(c: int, k: int = k) -> bool:
            close = sims[c][k] >= t.point and sims[c][k] >= closest[c] - t.margin
            near = aliases[c][k] or close or alias_sims[c][k] >= t.alias
            return near and not contradicts(c, k)

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
    score = sum(p.point.weight for p in covered) / evidence.rubric.total_weight
    return Assessment(
        tuple(covered), tuple(missed), tuple(uncertain), tuple(contradicted), tuple(misconceptions), score
    )


def head_features(
    evidence: Evidence, assessment: Assessment, thresholds: Thresholds = DEFAULT_THRESHOLDS, **kwargs: bool
) -> list[float]:
    """The verdict head's inputs for an assessed answer (``head.FEATURES``)."""

    def score_at(point: float, margin: float) -> float:
        return assess(evidence, replace(thresholds, point=point, margin=margin)).score

    return verdict_features(
        evidence, assessment, score_at, contrast=thresholds.contrast, point=thresholds.point, **kwargs
    )


def decide(
    evidence: Evidence,
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    head: VerdictHead | None = None,
    cross: CrossEncoder | None = None,
    cross_thresholds: CrossThresholds = DEFAULT_CROSS,
) -> Grade:
    """The grade that the evidence earns: from the verdict head when one is given, else from the score cut-offs;
    either way lowered for stated errors (``lower``). With ``cross``, the cross-encoder re-decides the points first
    and its numbers join the head's (``head`` must then be the cross stage's head).

    The verdict is "uncertain" when crediting the points that only a negated clause supports would change it.
    """
    t = thresholds
    a = assess(evidence, t)
    extra, pairs = [], None
    if cross is not None:
        if head is not None and head.cross_thresholds is not None:  # chosen with the cross stage's head
            states, contradicts = head.cross_thresholds
            cross_thresholds = replace(cross_thresholds, states=states, contradicts=contradicts)
        reading = read_answer(evidence, evidence.answer, cross, cross_thresholds)
        a, extra, pairs = reassess(a, reading, evidence), cross_features(reading, evidence), len(reading.pairs)
    errors = len(a.misconceptions) + len(a.contradicted)
    if head is None:
        hopeful = a.score + sum(p.point.weight for p in a.uncertain) / evidence.rubric.total_weight
        shown, if_credited = level(a.score, errors, t), level(hopeful, errors, t)
        decision = Decision("cut-offs", errors, cross_pairs=pairs)
    else:
        features = head_features(evidence, a, t) + extra
        shown = lower(head.label(features), errors, t)
        decision = Decision("head", errors, *head.probabilities(features), cross_pairs=pairs)
        credited = head_features(evidence, a, t, credit_uncertain=True) + extra
        if_credited = lower(head.label(credited), errors, t)
    verdict: Verdict = shown if if_credited == shown else "uncertain"
    feedback = write_feedback(verdict, a.covered, a.missed, a.uncertain, a.misconceptions, a.contradicted)
    return Grade(
        verdict,
        a.score,
        a.covered,
        a.missed,
        a.uncertain,
        a.misconceptions,
        feedback,
        shown=shown,
        contradicted=a.contradicted,
        decision=decision,
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
    head: VerdictHead | None | bool = True,
    cross: CrossEncoder | None | bool = False,
) -> Grade:
    """Grade a free-text answer, written in English, against a rubric (MiniLM clause matching with a negation guard
    and contrastive key points, then the verdict head).

    ``Grade.why()`` / ``Grade.to_json()`` give the evidence: which sentence matched which point or misconception,
    with its similarity. An answer that is not in English is not graded: ``Grade.not_english`` is set and the
    feedback says answers must be in English.

    ``embedder`` defaults to the bundled all-MiniLM-L6-v2, loaded once per process on first use. An empty answer
    and a keyword list without claims are graded incorrect before any model call. ``head``: True (the default)
    uses the shipped verdict head (trained on MiniLM's similarities) unless ``embedder`` is not an ``Encoder``;
    False or None decides with the score cut-offs of ``thresholds``. ``cross``: True adds the cross stage (the shipped
    cross-encoder and its head, ``cross_stage.py``) when both are built, the embedder is the bundled MiniLM and
    ``head`` is True; False (the default: the cross stage agrees better with the labels but grades fewer
    confident-wrong answers incorrect and costs four to five times the CPU, docs/grading.md) or None is the fast path
    alone; a ``CrossEncoder`` is used with the given head (or the cut-offs).
    """
    screened = screen(rubric, answer)
    if screened is not None:
        return screened
    bundled = embedder is None or isinstance(embedder, Encoder)
    if cross is True:
        cross_head = default_cross_head() if bundled and head is True else None
        cross = default_cross_encoder() if cross_head is not None else None
        if cross is not None:
            head = cross_head
    if head is True:
        head = default_head() if bundled else None
    evidence = collect_evidence(rubric, answer, embedder or default_embedder())
    return decide(evidence, thresholds, head or None, cross or None)
