"""The verifier (cross-encoder): its training pairs never come from held-out questions, its shipped weights are
small and load onto the bundled MiniLM, and it reads a claim the embedder cannot (a held-out question's rubric)."""

from __future__ import annotations

from pathlib import Path

import grading_support
import pytest

from tfdojo.practice.grading.agreement import load_labelled_answers, split_halves
from tfdojo.practice.grading.train_verifier import answer_pairs, bank_pairs, held_points
from tfdojo.practice.grading.verifier import CONTRADICTS, ENTAILS, WEIGHTS

ANSWERS = Path(__file__).parents[2] / "bench" / "data" / "grading_answers.toml"
minilm = grading_support.minilm  # the shared fixture


@pytest.fixture(scope="module")
def bank():
    from tfdojo.practice import load_bank

    return load_bank()


def test_training_pairs_never_come_from_a_held_out_question(bank):
    calibration, held_out = split_halves(load_labelled_answers(ANSWERS))
    held = {a.question for a in held_out}
    points = frozenset(held_points(bank, held))
    assert "Masked scores are set to minus infinity before the softmax" in points  # also in sliding-window-mask
    # a slice of the bank that holds both questions sharing that point, and some calibration answers
    some = [q for q in bank if q.id in held or q.id == "sliding-window-mask"][:12] + [bank["sliding-window-mask"]]
    embedder = grading_support.BagOfWords()
    pairs = bank_pairs(some, held, embedder) + answer_pairs(calibration[:40], bank, embedder, points)
    assert pairs and not {point for point, _, _ in pairs} & points
    held_texts = {a.text for a in held_out}
    assert not any(text in held_texts for _, text, _ in pairs)


@pytest.mark.slow
def test_the_shipped_verifier_is_small_and_reads_a_swapped_claim(minilm, bank):
    from tfdojo.practice.grading.verifier import default_verifier

    if not WEIGHTS.exists():
        pytest.skip("verifier.safetensors is not built (python -m tfdojo.practice.grading.train_verifier)")
    assert WEIGHTS.stat().st_size < 5_000_000
    verifier = default_verifier()
    point = bank["gqa-head-grouping"].rubric.key_points[0].text  # MQA shares one key and value head (held out)
    wrong = "MQA shares the query projection across heads while each head keeps its own keys and values"
    right = "In multi-query attention all the query heads read one single shared key and value head"
    probs = verifier.probabilities([point, point], [wrong, right])
    assert probs[0, CONTRADICTS] > probs[0, ENTAILS]
    assert probs[1, ENTAILS] > probs[1, CONTRADICTS]
