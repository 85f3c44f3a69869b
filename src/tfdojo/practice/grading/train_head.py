"""Fit the verdict head (``head.py``) on the calibration half of the labelled answers, never the held-out half.

    .venv/bin/python -m tfdojo.practice.grading.train_head          # writes head.json beside this file (a minute)
    .venv/bin/python -m tfdojo.practice.grading.train_head --cross  # head_cross.json: the cross stage's head

Each calibration answer is graded by the fast path (one MiniLM pass) and turned into ``head.FEATURES``. Two
L2-regularised logistic regressions, P(label >= partial) and P(label = correct), are fit by L-BFGS in float64 from
zero (deterministic). The L2 strength and the two probability cut-offs are chosen by cross-validation by question
(7 folds of the 21 calibration questions): the best Cohen's kappa of the shown label (the head's label lowered for
stated errors, as the grader does) among the settings whose out-of-fold false passes (incorrect answers shown
correct) are at most 2 %, the issue's bound. The final head is fit on every calibration answer.

``--cross`` fits the cross stage's head: each answer is read by the shipped cross-encoder too (``cross_stage.py``),
whose decisions re-decide the points and whose four numbers (``head.CROSS_FEATURES``) join the others. The
cross-encoder was not trained on the calibration questions (``pairs.py``), so its numbers here are as it gives them
on unseen questions.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from tfdojo.practice.grading.agreement import LabelledAnswer, cohen_kappa, load_labelled_answers, split_halves
from tfdojo.practice.grading.cross_encoder import CrossEncoder, default_cross_encoder
from tfdojo.practice.grading.cross_stage import CrossReading, CrossThresholds, cross_features, read_answer, reassess
from tfdojo.practice.grading.embedder import default_embedder
from tfdojo.practice.grading.evidence import Evidence, collect_evidence
from tfdojo.practice.grading.free_text import assess, head_features, lower, screen
from tfdojo.practice.grading.head import (
    CROSS_FEATURES,
    CROSS_WEIGHTS,
    FEATURES,
    SIGNS,
    WEIGHTS,
    VerdictHead,
    covers_nothing,
)

ANSWERS = Path(__file__).parents[4] / "bench" / "data" / "grading_answers.toml"
FOLDS = 7
L2 = (0.01, 0.03, 0.1, 0.3)
CUTS = tuple(x / 20 for x in range(2, 19))
MAX_FALSE_PASS = 0.02
# (P(states), P(contradicts)) from which the cross stage reads a point as stated / contradicted; 1.01: never
CROSS_GRID = ((0.5, 0.5), (0.5, 0.7), (0.5, 0.9), (0.5, 1.01), (0.35, 0.9), (0.35, 1.01), (0.65, 0.9))


@dataclass(frozen=True)
class Calibration:
    """The calibration answers the grader reads (not screened out) with their evidence (and the cross-encoder's reading
    when the cross stage is fit), and the labels of the answers screened out (empty, not English, keyword salad: shown
    incorrect, and counted in kappa as such)."""

    kept: list[LabelledAnswer]
    evidence: list[Evidence]
    readings: list[CrossReading | None]
    screened: list[str]


def read_calibration(answers: Sequence[LabelledAnswer], cross: CrossEncoder | None = None) -> Calibration:
    """Grade every answer by the fast path (and read it with ``cross`` when given) once."""
    from tfdojo.practice import load_bank

    bank, embedder = load_bank(), default_embedder()
    out = Calibration([], [], [], [])
    for a in answers:
        rubric = bank[a.question].rubric
        if screen(rubric, a.text) is not None:
            out.screened.append(a.label)
            continue
        evidence = collect_evidence(rubric, a.text, embedder)
        out.kept.append(a)
        out.evidence.append(evidence)
        out.readings.append(None if cross is None else read_answer(evidence, a.text, cross))
    return out


def calibration_features(
    calibration: Calibration, cross_thresholds: CrossThresholds | None = None
) -> tuple[list[list[float]], list[int]]:
    """The head's numbers for each answer read, and its stated errors (they lower the head's label, as in
    ``free_text.decide``); the cross stage's decisions (under ``cross_thresholds``) and numbers when it was read."""
    rows, errors = [], []
    for evidence, reading in zip(calibration.evidence, calibration.readings, strict=True):
        assessment, extra = assess(evidence), []
        if reading is not None:
            reading = replace(reading, thresholds=cross_thresholds or reading.thresholds)
            assessment, extra = reassess(assessment, reading, evidence), cross_features(reading, evidence)
        rows.append(head_features(evidence, assessment) + extra)
        errors.append(len(assessment.misconceptions) + len(assessment.contradicted))
    return rows, errors


@dataclass(frozen=True)
class CrossValidated:
    """A head setting chosen by cross-validation: its out-of-fold kappa and false passes, the L2 penalty and the two
    cut-offs, and the label it showed each answer read (out of fold)."""

    kappa: float
    false_pass: float
    l2: float
    cut_partial: float
    cut_correct: float
    shown: tuple[str, ...]


def fit_logistic(x: torch.Tensor, y: torch.Tensor, l2: float, signs: Sequence[int] | None = None) -> torch.Tensor:
    """Weights then bias of an L2-regularised logistic regression on standardised features (float64, L-BFGS).

    ``signs`` (+1, -1 or 0 per feature) holds a weight to that sign: it is fit as sign * softplus(v).
    """
    sign = torch.tensor(signs if signs is not None else [0] * x.shape[1], dtype=torch.float64)
    v = torch.zeros(x.shape[1] + 1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([v], max_iter=500, tolerance_grad=1e-10, line_search_fn="strong_wolfe")

    def weights() -> torch.Tensor:
        held = sign * torch.nn.functional.softplus(v[:-1])
        return torch.cat([torch.where(sign == 0, v[:-1], held), v[-1:]])

    def closure() -> torch.Tensor:
        opt.zero_grad()
        w = weights()
        logits = x @ w[:-1] + w[-1]  # (N,)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, y) + l2 * (w[:-1] ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return weights().detach()


def _standardise(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and scale per feature (a constant feature gets scale 1)."""
    scale = x.std(0)
    return x.mean(0), torch.where(scale > 1e-9, scale, torch.ones_like(scale))


def _labels(p_partial: torch.Tensor, p_correct: torch.Tensor, cut_partial: float, cut_correct: float) -> list:
    return [
        "correct" if c >= cut_correct else "partial" if p >= cut_partial else "incorrect"
        for p, c in zip(p_partial.tolist(), p_correct.tolist(), strict=True)
    ]


def agreement(labels: Sequence[str], shown: Sequence[str]) -> tuple[float, float]:
    """(kappa, false-pass rate) of shown labels against the true ones."""
    wrong = [s for lab, s in zip(labels, shown, strict=True) if lab == "incorrect"]
    return cohen_kappa(labels, shown), sum(s == "correct" for s in wrong) / max(len(wrong), 1)


def cross_validate(
    x: torch.Tensor,
    labels: Sequence[str],
    folds: torch.Tensor,
    errors: Sequence[int],
    screened: Sequence[str],
    signs: Sequence[int],
) -> CrossValidated | None:
    """The best setting out of fold with at most 2 % false passes, with its out-of-fold labels."""
    y_partial = torch.tensor([lab != "incorrect" for lab in labels], dtype=torch.float64)
    y_correct = torch.tensor([lab == "correct" for lab in labels], dtype=torch.float64)
    empty = [covers_nothing(row) for row in x.tolist()]
    all_labels = list(labels) + list(screened)
    best: CrossValidated | None = None
    for l2 in L2:
        p_partial, p_correct = (
            torch.zeros(len(labels), dtype=torch.float64),
            torch.zeros(len(labels), dtype=torch.float64),
        )
        for f in range(FOLDS):
            train_rows, test_rows = folds != f, folds == f
            mean, scale = _standardise(x[train_rows])
            z_train, z_test = (x[train_rows] - mean) / scale, (x[test_rows] - mean) / scale
            for y, out in ((y_partial, p_partial), (y_correct, p_correct)):
                w = fit_logistic(z_train, y[train_rows], l2, signs)
                out[test_rows] = torch.sigmoid(z_test @ w[:-1] + w[-1])
        for cut_partial, cut_correct in itertools.product(CUTS, CUTS):
            labelled = _labels(p_partial, p_correct, cut_partial, cut_correct)
            shown = [
                "incorrect" if nothing else lower(label, n)
                for label, n, nothing in zip(labelled, errors, empty, strict=True)
            ] + ["incorrect"] * len(screened)
            kappa, false_pass = agreement(all_labels, shown)
            if false_pass <= MAX_FALSE_PASS and (best is None or kappa > best.kappa + 1e-9):
                best = CrossValidated(kappa, false_pass, l2, cut_partial, cut_correct, tuple(shown[: len(labels)]))
    return best


def per_kind(answers: Sequence[LabelledAnswer], shown: Sequence[str]) -> dict[str, str]:
    """Out-of-fold "right / n" per kind of answer (of the answers read; the screened ones are shown incorrect)."""
    right: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for a, label in zip(answers, shown, strict=True):
        total[a.kind] += 1
        right[a.kind] += label == a.label
    return {kind: f"{right[kind]}/{n}" for kind, n in total.items()}


def train(answers: Sequence[LabelledAnswer], cross: CrossEncoder | None = None) -> tuple[VerdictHead, dict]:
    """The head fit on ``answers`` (the calibration half) and its cross-validated figures; over the cross stage's
    numbers too when ``cross`` is given, with the cross stage's probability thresholds chosen from ``CROSS_GRID`` by
    the same cross-validation."""
    names = FEATURES + (CROSS_FEATURES if cross is not None else ())
    calibration = read_calibration(answers, cross)
    kept = calibration.kept
    labels = [a.label for a in kept]
    questions = sorted({a.question for a in kept}, key=lambda q: hashlib.sha256(q.encode()).hexdigest())
    fold_of = {q: i % FOLDS for i, q in enumerate(questions)}
    folds = torch.tensor([fold_of[a.question] for a in kept])
    signs = [SIGNS.get(name, 0) for name in names]

    best, chosen = None, None
    for grid in CROSS_GRID if cross is not None else (None,):
        thresholds = None if grid is None else CrossThresholds(states=grid[0], contradicts=grid[1])
        rows, errors = calibration_features(calibration, thresholds)
        x = torch.tensor(rows, dtype=torch.float64)  # (N, F)
        found = cross_validate(x, labels, folds, errors, calibration.screened, signs)
        if found is not None:
            print(f"cross thresholds {grid}: kappa {found.kappa:.4f}, false passes {found.false_pass:.4f}", flush=True)
        if found is not None and (best is None or found.kappa > best.kappa + 1e-9):
            best, chosen = found, (grid, x)
    if best is None or chosen is None:
        raise RuntimeError("no setting keeps cross-validated false passes at 2 %; widen CUTS")
    l2, cut_partial, cut_correct = best.l2, best.cut_partial, best.cut_correct
    grid, x = chosen
    y_partial = torch.tensor([lab != "incorrect" for lab in labels], dtype=torch.float64)
    y_correct = torch.tensor([lab == "correct" for lab in labels], dtype=torch.float64)
    mean, scale = _standardise(x)
    z = (x - mean) / scale
    head = VerdictHead(
        features=names,
        mean=tuple(round(v, 6) for v in mean.tolist()),
        scale=tuple(round(v, 6) for v in scale.tolist()),
        at_least_partial=tuple(round(v, 6) for v in fit_logistic(z, y_partial, l2, signs).tolist()),
        correct=tuple(round(v, 6) for v in fit_logistic(z, y_correct, l2, signs).tolist()),
        cut_partial=cut_partial,
        cut_correct=cut_correct,
        trained_on=f"calibration half of grading_answers.toml: {len(answers)} answers, {len(questions)} questions",
        cross_thresholds=grid,
    )
    report = {
        "cv_kappa": best.kappa,
        "cv_false_pass": best.false_pass,
        "l2": l2,
        "n": len(answers),
        "cross_thresholds": grid,
        "cv_per_kind": per_kind(kept, best.shown),
    }
    return head, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=Path, default=ANSWERS)
    parser.add_argument("--cross", action="store_true", help="fit the cross stage's head (head_cross.json)")
    parser.add_argument("--out", type=Path, default=None, help="default: head.json, or head_cross.json with --cross")
    parser.add_argument(
        "--cross-weights", type=Path, default=None, help="with --cross: a cross-encoder other than the shipped one"
    )
    args = parser.parse_args()
    torch.set_num_threads(1)
    calibration, _ = split_halves(load_labelled_answers(args.answers))  # the held-out half is never read
    if args.cross:
        cross = (
            CrossEncoder.load(default_embedder(), args.cross_weights) if args.cross_weights else default_cross_encoder()
        )
        if cross is None:
            raise SystemExit("no cross-encoder is built; train it first: python -m tfdojo.practice.grading.train_cross")
        head, report = train(calibration, cross)
    else:
        head, report = train(calibration)
    args.out = args.out or (CROSS_WEIGHTS if args.cross else WEIGHTS)
    head.save(args.out)
    print(f"wrote {args.out}: {report}")


if __name__ == "__main__":
    main()
