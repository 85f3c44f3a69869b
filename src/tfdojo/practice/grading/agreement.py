"""Measuring the free-text grader against people: the labelled answer set, its fixed split, and Cohen's kappa.

The set (``bench/data/grading_answers.toml``) holds ``[[answer]]`` tables with ``question`` (a bank id), ``kind``,
``label`` (correct / partial / incorrect) and ``text``. It is split by question, so the thresholds calibrated on one
half are judged on rubrics they have never seen.
"""

from __future__ import annotations

import hashlib
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tfdojo.errors import BankError

LABELS = ("correct", "partial", "incorrect")
KINDS = (
    "paraphrase",
    "partial",
    "wrong",
    "negation",
    "salad",
    "off-topic",
    # adversarial (issue 9): the rubric's words with a wrong claim, correct but short, correct in symbols, two
    # definitions exchanged, a correct answer with more correct sentences appended
    "confident-wrong",
    "terse",
    "formula",
    "swapped",
    "appended",
)
ADVERSARIAL = KINDS[6:]


@dataclass(frozen=True)
class LabelledAnswer:
    """One answer to a bank question, with the label a person gave it and the kind of answer it is."""

    question: str
    kind: str
    label: str
    text: str


def load_labelled_answers(path: Path) -> list[LabelledAnswer]:
    """The answers of a labelled set, in file order; BankError names the entry that is malformed."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    answers = []
    for index, raw in enumerate(data.get("answer", [])):
        try:
            answer = LabelledAnswer(raw["question"], raw["kind"], raw["label"], raw["text"])
        except KeyError as e:
            raise BankError(f"{path}: answer #{index + 1} lacks {e}; give question, kind, label and text") from None
        if answer.label not in LABELS or answer.kind not in KINDS:
            raise BankError(
                f"{path}: answer #{index + 1} has label {answer.label!r} and kind {answer.kind!r}; "
                f"labels are {LABELS}, kinds {KINDS}"
            )
        answers.append(answer)
    return answers


def split_halves(answers: Sequence[LabelledAnswer]) -> tuple[list[LabelledAnswer], list[LabelledAnswer]]:
    """(calibration, held-out): question ids sorted by SHA-256, even positions calibrate, odd ones are held out.

    Every answer to a question lands in the same half, and the halves hold the same number of questions (±1).
    """
    order = sorted({a.question for a in answers}, key=lambda q: hashlib.sha256(q.encode()).hexdigest())
    calibration = set(order[::2])
    return [a for a in answers if a.question in calibration], [a for a in answers if a.question not in calibration]


def split_calibration(calibration: Sequence[LabelledAnswer]) -> tuple[list[LabelledAnswer], list[LabelledAnswer]]:
    """The calibration half split again by question, the same way; ``bench/grading.py --calibrate`` tunes the
    similarity thresholds on the second part (as they were tuned before the verdict head, which uses all of it)."""
    return split_halves(calibration)


def cohen_kappa(rater_a: Sequence[str], rater_b: Sequence[str]) -> float:
    """Cohen's kappa (1960): agreement beyond chance, (p_o - p_e) / (1 - p_e), for two raters over the same items."""
    if len(rater_a) != len(rater_b) or not rater_a:
        raise ValueError(f"kappa needs two equally long, non-empty ratings; got {len(rater_a)} and {len(rater_b)}")
    n = len(rater_a)
    observed = sum(a == b for a, b in zip(rater_a, rater_b, strict=True)) / n
    count_a, count_b = Counter(rater_a), Counter(rater_b)
    expected = sum(count_a[c] * count_b[c] for c in count_a) / n**2
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)
