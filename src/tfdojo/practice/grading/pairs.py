"""The cross-encoder's training pairs: (key point, answer sentence, states | contradicts | neither), and their split.

Written pairs come from ``bench/data/grading_pairs/*.toml`` (people wrote them per key point: paraphrases, terse and
formula-style statements, and confident-wrong sentences that reuse the point's words; format in docs/grading.md).
Automatic pairs are added for every free-text question of the bank:

- states: the point's own text and each of its aliases;
- contradicts: the point's contrasts (``contrasts.py``: one term exchanged for the one it is confused with), and
  each rubric misconception paired with the key point it shares most content words with;
- neither: the other key points of the same question (their text and written ``states`` sentences), and a few
  sentences written for other questions (seeded sample);
- compounds, as answers write them (one sentence stating two points): a written ``states`` sentence of a point joined
  to one of another point of the same question ("A; B", "A, and b") states both points; two other points' sentences
  joined state neither of a third.

The split is by question and follows ``agreement.split_halves`` of the labelled answers: pairs of the held-out half's
questions are never trained on (they measure pair accuracy on unseen questions); pairs of the calibration half's
questions are the development set (the verdict head is fit on those questions' answers, so the cross-encoder must not
have seen them either); the cross-encoder trains on the pairs of every other question.
"""

from __future__ import annotations

import random
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tfdojo.errors import BankError
from tfdojo.practice.grading.agreement import load_labelled_answers, split_halves
from tfdojo.practice.grading.contrasts import contrasts
from tfdojo.practice.grading.words import content_stems
from tfdojo.practice.loader import Bank

RELATIONS = ("states", "contradicts", "neither")
FREE_TEXT_TYPES = ("conceptual", "research", "system-design", "optimization")
ROOT = Path(__file__).parents[4]
PAIRS_DIR = ROOT / "bench" / "data" / "grading_pairs"
ANSWERS = ROOT / "bench" / "data" / "grading_answers.toml"
OTHER_QUESTION_NEGATIVES = 2  # sentences of other questions paired with each point as "neither"
COMPOUNDS = 2  # per key point: its written "states" sentences joined with another point's (seeded)


@dataclass(frozen=True)
class Pair:
    """One example: does ``sentence`` state the key ``point`` (of ``question``), contradict it, or neither?"""

    question: str
    point: str
    sentence: str
    relation: str  # one of RELATIONS
    source: str  # "written:<style>" or "auto:<how>"


def load_written_pairs(bank: Bank, folder: Path = PAIRS_DIR) -> list[Pair]:
    """The people-written pairs of every ``*.toml`` in ``folder``; BankError names a malformed entry."""
    ids = {q.id: q for q in bank}
    pairs = []
    for path in sorted(folder.glob("*.toml")):
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as e:
            raise BankError(f"{path}: not valid TOML ({e})") from None
        for n, raw in enumerate(data.get("pair", []), start=1):
            try:
                question, index, label, sentence = raw["question"], raw["point"], raw["label"], raw["sentence"]
            except KeyError as e:
                raise BankError(f"{path}: pair #{n} lacks {e}; give question, point, label and sentence") from None
            if question not in ids or ids[question].rubric is None:
                raise BankError(f"{path}: pair #{n} names {question!r}, which is not a bank question with a rubric")
            points = ids[question].rubric.key_points
            if not isinstance(index, int) or not 0 <= index < len(points) or label not in RELATIONS[:2]:
                raise BankError(
                    f"{path}: pair #{n} has point {index!r} (0..{len(points) - 1}) and label {label!r} "
                    f"(states or contradicts)"
                )
            pairs.append(Pair(question, points[index].text, sentence.strip(), label, f"written:{raw.get('style', '')}"))
    return pairs


def _closest_point(text: str, points: Sequence[str]) -> int | None:
    """The key point sharing the most content words with ``text`` (None when it shares none)."""
    words = content_stems([text])
    overlaps = [len(words & content_stems([p])) for p in points]
    best = max(range(len(points)), key=lambda k: overlaps[k])
    return best if overlaps[best] else None


def _stated(written: Sequence[Pair]) -> dict[tuple[str, str], list[str]]:
    """The written "states" sentences of each (question, key point), in file order."""
    stated: dict[tuple[str, str], list[str]] = {}
    for p in written:
        if p.relation == "states":
            stated.setdefault((p.question, p.point), []).append(p.sentence)
    return stated


def automatic_pairs(bank: Bank, written: Sequence[Pair], seed: int = 0) -> list[Pair]:
    """Pairs made from the rubrics themselves and from the written sentences (see the module docstring)."""
    rng = random.Random(seed)
    stated = _stated(written)
    pool = sorted({(p.question, p.sentence) for p in written})
    pairs: list[Pair] = []
    for q in bank:
        if q.type not in FREE_TEXT_TYPES or q.rubric is None:
            continue
        texts = [k.text for k in q.rubric.key_points]
        for k, point in enumerate(q.rubric.key_points):
            pairs.append(Pair(q.id, point.text, point.text, "states", "auto:point"))
            pairs.extend(Pair(q.id, point.text, a, "states", "auto:alias") for a in point.aliases)
            pairs.extend(Pair(q.id, point.text, c.text, "contradicts", "auto:contrast") for c in contrasts(point.text))
            for j, other in enumerate(q.rubric.key_points):
                if j != k:
                    pairs.append(Pair(q.id, point.text, other.text, "neither", "auto:other-point"))
                    pairs.extend(
                        Pair(q.id, point.text, s, "neither", "auto:other-point-sentence")
                        for s in stated.get((q.id, other.text), [])
                    )
            others = [s for question, s in pool if question != q.id]
            pairs.extend(
                Pair(q.id, point.text, s, "neither", "auto:other-question")
                for s in rng.sample(others, min(OTHER_QUESTION_NEGATIVES, len(others)))
            )
        for m in q.rubric.misconceptions:
            k = _closest_point(m.text, texts)
            if k is not None:
                pairs.append(Pair(q.id, texts[k], m.text, "contradicts", "auto:misconception"))
    return pairs


def _join(rng: random.Random, first: str, second: str) -> str:
    """Two sentences as one, the way answers chain claims: "A; B" or "A, and b" (a capital kept for "MQA", "KV")."""
    first = first.rstrip(" .")
    if rng.random() < 0.5:
        return f"{first}; {second}"
    return f"{first}, and {second[0].lower() + second[1:] if second[1:2].islower() else second}"


def compound_pairs(bank: Bank, written: Sequence[Pair], seed: int = 0) -> list[Pair]:
    """Sentences stating two points of a question: "states" for each of the two, "neither" for a third point."""
    rng = random.Random(seed)
    stated = _stated(written)
    pairs: list[Pair] = []
    for q in bank:
        if q.type not in FREE_TEXT_TYPES or q.rubric is None:
            continue
        texts = [k.text for k in q.rubric.key_points if stated.get((q.id, k.text))]
        for point in texts:
            others = [t for t in texts if t != point]
            if not others:
                continue
            for sentence in rng.sample(stated[q.id, point], min(COMPOUNDS, len(stated[q.id, point]))):
                other = rng.choice(others)
                parts = [sentence, rng.choice(stated[q.id, other])]
                rng.shuffle(parts)
                joined = _join(rng, *parts)
                pairs.append(Pair(q.id, point, joined, "states", "auto:compound"))
                pairs.append(Pair(q.id, other, joined, "states", "auto:compound"))
            if len(others) >= 2:
                a, b = rng.sample(others, 2)
                joined = _join(rng, rng.choice(stated[q.id, a]), rng.choice(stated[q.id, b]))
                pairs.append(Pair(q.id, point, joined, "neither", "auto:compound-neither"))
    return pairs


@dataclass(frozen=True)
class PairSplit:
    """Pairs by question: ``train`` (neither half of the labelled answers), ``dev`` (calibration half), ``test``
    (held-out half: never trained on, never used to choose anything)."""

    train: tuple[Pair, ...]
    dev: tuple[Pair, ...]
    test: tuple[Pair, ...]


def labelled_halves(path: Path = ANSWERS) -> tuple[frozenset[str], frozenset[str]]:
    """Question ids of the calibration and held-out halves of the labelled answers (``agreement.split_halves``)."""
    calibration, held_out = split_halves(load_labelled_answers(path))
    return frozenset(a.question for a in calibration), frozenset(a.question for a in held_out)


def split_pairs(pairs: Iterable[Pair], answers: Path = ANSWERS) -> PairSplit:
    """Split pairs by their question into train / dev / test (see ``PairSplit``)."""
    calibration, held_out = labelled_halves(answers)
    pairs = list(pairs)
    return PairSplit(
        tuple(p for p in pairs if p.question not in calibration | held_out),
        tuple(p for p in pairs if p.question in calibration),
        tuple(p for p in pairs if p.question in held_out),
    )


def all_pairs(bank: Bank, folder: Path = PAIRS_DIR, seed: int = 0) -> list[Pair]:
    """Written pairs, then automatic ones and compounds, de-duplicated (first kept)."""
    written = load_written_pairs(bank, folder)
    seen, out = set(), []
    for p in [*written, *automatic_pairs(bank, written, seed), *compound_pairs(bank, written, seed)]:
        key = (p.question, p.point, p.sentence.lower())
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out
