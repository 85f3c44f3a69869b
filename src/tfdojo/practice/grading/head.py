"""The verdict head: two small logistic regressions over the grader's evidence, trained on the calibration half.

The score cut-offs of ``free_text.level`` read one number, the covered share of the rubric's weight, so a terse
correct answer that states the points loosely and a partial one that states one point well can land on the same
side. The head reads the evidence whole: how close the best affirmed clause comes to each point (soft coverage at
several levels), the covered share under looser matching, the stated errors, how close a misconception or a wrong
version of a point comes, negations, the answer's length, its share of symbols and how many separate claims
(clauses) it makes in how many words (a terse answer states several points in a few fragments).

    features (standardised) -> P(at least partial) = sigmoid(w_p . x + b_p),  P(correct) = sigmoid(w_c . x + b_c)
    shown = correct if P(correct) >= cut_correct, else partial if P(at least partial) >= cut_partial, else incorrect

The weights (``head.json``, under 3 KB) are fit by ``python -m tfdojo.practice.grading.train_head`` on the
calibration half of ``bench/data/grading_answers.toml`` only; its cut-offs are the best Cohen's kappa under
cross-validation by question with at most 2 % false passes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import torch

from tfdojo.practice.grading.evidence import Evidence
from tfdojo.practice.grading.grade import MisconceptionMatch, PointMatch, ShownLabel

WEIGHTS = Path(__file__).with_name("head.json")
CROSS_WEIGHTS = Path(__file__).with_name("head_cross.json")  # the head over FEATURES + the cross stage's numbers
# (point, margin) of the looser matchings whose covered share is a feature.
LOOSER: tuple[tuple[float, float], ...] = ((0.30, 0.1), (0.30, 0.2), (0.46, 0.1), (0.38, 0.2))
FEATURES: tuple[str, ...] = (
    "score",
    "soft_coverage",
    "coverage_at_0.5",
    "coverage_at_0.6",
    "coverage_at_0.7",
    "best_point",
    "misconceptions",
    "contradicted",
    "uncertain_share",
    "misconception_similarity",
    "misconception_over_point",
    "misconception_alias",
    "contrast_margin",
    "negated_share",
    "log_words",
    "topicality",
    "near_closest_share",
    *(f"score_at_{p}_{m}" for p, m in LOOSER),
    "symbol_share",
    "log_clauses",
    "clauses_per_word",
)
# The cross stage's numbers (``cross_stage.cross_features``), appended to FEATURES in the cross stage's head.
CROSS_FEATURES: tuple[str, ...] = ("cross_coverage", "cross_stated_share", "cross_contradiction", "cross_contradicted")
# The sign each weight is held to in training: more coverage never lowers P(correct) or P(at least partial), a stated
# or nearly stated error never raises them (0: free). Unconstrained, the fit on 315 answers put weight on collinear
# numbers in both directions.
SIGNS: dict[str, int] = {
    **{name: 1 for name in FEATURES if name.startswith(("score", "coverage_at_"))},
    "soft_coverage": 1,
    "best_point": 1,
    "near_closest_share": 1,
    **{name: -1 for name in FEATURES if name.startswith("misconception")},
    "misconceptions": -1,
    "contradicted": -1,
    "contrast_margin": -1,
    "uncertain_share": -1,
    "cross_coverage": 1,
    "cross_stated_share": 1,
    "cross_contradiction": -1,
    "cross_contradicted": -1,
}


@dataclass(frozen=True)
class Assessment:
    """What the matching credits, before a verdict: covered, missed, uncertain and contradicted points, errors."""

    covered: tuple[PointMatch, ...]
    missed: tuple[PointMatch, ...]
    uncertain: tuple[PointMatch, ...]
    contradicted: tuple[PointMatch, ...]
    misconceptions: tuple[MisconceptionMatch, ...]
    score: float


def verdict_features(
    evidence: Evidence,
    assessment: Assessment,
    score_at: Callable[[float, float], float],
    *,
    contrast: float,
    point: float,
    credit_uncertain: bool = False,
) -> list[float]:
    """The head's inputs for one answer (``FEATURES`` order); ``score_at(point, margin)`` is the covered share under
    looser matching. ``credit_uncertain`` counts the points only a negated clause supports as covered."""
    weights = torch.tensor([p.weight for p in evidence.rubric.key_points])
    weights = weights / weights.sum()  # (K,)
    sims, alias = evidence.point_similarity, evidence.point_alias.float()  # (C, K)
    own = torch.maximum(torch.maximum(sims, evidence.alias_similarity), alias)  # (C, K)
    negated = torch.tensor([c.negated for c in evidence.candidates], dtype=torch.bool)  # (C,)
    agrees = (~negated)[:, None] | torch.tensor(evidence.point_negated, dtype=torch.bool)[None, :]  # (C, K)
    swapped = (evidence.contrast_similarity > own + contrast) & (evidence.contrast_similarity >= point) & (alias == 0)
    usable = agrees & ~swapped
    support = torch.where(usable, own, torch.zeros_like(own)).max(0).values  # (K,)
    closest = sims.max(1).values  # (C,)
    near_closest = torch.where(usable, sims - closest[:, None], torch.full_like(sims, -1.0)).max(0).values  # (K,)
    affirmed = (~negated)[:, None]
    miscon = evidence.misconception_similarity  # (C, M)
    if miscon.numel():
        misconception_sim = float(torch.where(affirmed, miscon, torch.full_like(miscon, -1.0)).max())
        over_point = float(torch.where(affirmed, miscon - closest[:, None], torch.full_like(miscon, -1.0)).max())
    else:
        misconception_sim, over_point = 0.0, -1.0
    margin = evidence.contrast_similarity - own
    margin = torch.where((evidence.contrast_similarity > -1) & affirmed, margin, torch.full_like(margin, -1.0))
    clauses = [c.text for c, parts in zip(evidence.candidates, evidence.parts, strict=True) if len(parts) == 1]
    text = " ".join(clauses)
    total = evidence.rubric.total_weight
    uncertain = sum(p.point.weight for p in assessment.uncertain) / total
    score = assessment.score + (uncertain if credit_uncertain else 0.0)
    return [
        score,
        float((weights * support).sum()),
        float((weights * (support >= 0.5)).sum()),
        float((weights * (support >= 0.6)).sum()),
        float((weights * (support >= 0.7)).sum()),
        float(support.max()),
        float(len(assessment.misconceptions)),
        float(len(assessment.contradicted)),
        0.0 if credit_uncertain else uncertain,
        misconception_sim,
        over_point,
        float(evidence.misconception_alias.any()),
        float(margin.max()),
        float(negated.float().mean()),
        math.log1p(len(text.split())),
        float(closest.max()),
        float((weights * (near_closest > -0.1)).sum()),
        *(score_at(p, m) for p, m in LOOSER),
        sum(not ch.isalpha() and not ch.isspace() for ch in text) / max(len(text), 1),
        math.log1p(len(clauses)),
        len(clauses) / max(len(text.split()), 1),
    ]


_SCORES = tuple(i for i, name in enumerate(FEATURES) if name == "score" or name.startswith("score_at_"))


def covers_nothing(features: Sequence[float]) -> bool:
    """Whether no key point is covered under the grader's matching nor any of the looser ones: such an answer is
    incorrect whatever the regressions say ("Bananas are yellow." is short and one clause, like a terse answer)."""
    return all(features[i] == 0 for i in _SCORES)


@dataclass(frozen=True)
class VerdictHead:
    """Standardisation, the two logistic regressions (weights then bias) and the cut-offs on their probabilities."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    at_least_partial: tuple[float, ...]
    correct: tuple[float, ...]
    cut_partial: float
    cut_correct: float
    trained_on: str
    cross_thresholds: tuple[float, float] | None = None  # the cross stage's (P(states), P(contradicts)) thresholds

    def __post_init__(self) -> None:
        n = len(self.features)
        sizes = (len(self.mean), len(self.scale), len(self.at_least_partial) - 1, len(self.correct) - 1)
        if any(size != n for size in sizes):
            raise ValueError(f"a verdict head over {n} features needs {n} means, scales and weights; got {sizes}")

    def probabilities(self, features: Sequence[float]) -> tuple[float, float]:
        """(P(at least partial), P(correct)) for one answer's features."""
        z = [(x - m) / s for x, m, s in zip(features, self.mean, self.scale, strict=True)]

        def logistic(w: tuple[float, ...]) -> float:
            logit = sum(a * b for a, b in zip(z, w[:-1], strict=True)) + w[-1]
            return 1.0 / (1.0 + math.exp(-max(min(logit, 60.0), -60.0)))

        return logistic(self.at_least_partial), logistic(self.correct)

    def label(self, features: Sequence[float]) -> ShownLabel:
        """The 3-way label for one answer's features; an answer that covers no point earns nothing."""
        if covers_nothing(features):
            return "incorrect"
        partial, correct = self.probabilities(features)
        return "correct" if correct >= self.cut_correct else "partial" if partial >= self.cut_partial else "incorrect"

    def save(self, path: Path = WEIGHTS) -> None:
        """Write the head as JSON (a few KB)."""
        path.write_text(json.dumps(asdict(self), indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path = WEIGHTS, features: tuple[str, ...] = FEATURES) -> VerdictHead:
        """Read a head written by ``save``; it must be over the features this version computes."""
        data = json.loads(path.read_text(encoding="utf-8"))
        head = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})
        if head.features != features:
            raise ValueError(f"{path} was trained on other features; rebuild it (python -m {__package__}.train_head)")
        return head


@cache
def default_head() -> VerdictHead | None:
    """The shipped head (``head.json``), or None when it is not built (the grader then uses the score cut-offs)."""
    return VerdictHead.load() if WEIGHTS.exists() else None


@cache
def default_cross_head() -> VerdictHead | None:
    """The shipped head of the cross stage (``head_cross.json``), or None when it is not built."""
    return VerdictHead.load(CROSS_WEIGHTS, FEATURES + CROSS_FEATURES) if CROSS_WEIGHTS.exists() else None
