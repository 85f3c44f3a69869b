"""The grade explains itself (``Grade.why`` / ``to_json``), refuses non-English answers with a message, and is
monotone: appending a correct sentence never takes away credit already earned."""

from __future__ import annotations

import json
import random

import grading_support
import pytest

from tfdojo.practice import Rubric, grade_free_text
from tfdojo.practice.grading import Thresholds
from tfdojo.practice.grading.language import is_english

BagOfWords = grading_support.BagOfWords
minilm = grading_support.minilm  # the shared fixture

RUBRIC = Rubric.from_dict(
    {
        "key_points": [{"text": "alpha beta gamma", "weight": 2}, {"text": "delta epsilon zeta"}],
        "misconceptions": [{"text": "omega psi chi", "feedback": "Omega is not involved."}],
    }
)
STRICT = Thresholds(point=0.6, margin=0.0, misconception=0.6, correct=0.75, partial=0.25)


def test_why_names_the_sentence_behind_every_point_and_misconception():
    answer = "alpha beta gamma is here; omega psi chi is too."
    grade = grade_free_text(RUBRIC, answer, embedder=BagOfWords(), thresholds=STRICT)
    why = json.loads(grade.to_json())
    assert why == grade.why()
    points = {p["point"]: p for p in why["points"]}
    assert points["alpha beta gamma"]["status"] == "covered"
    assert points["alpha beta gamma"]["sentence"] == "alpha beta gamma is here"
    # cos("alpha beta gamma is here", "alpha beta gamma") over stem counts = 3 / sqrt(5 * 3)
    assert points["alpha beta gamma"]["similarity"] == pytest.approx(3 / 15**0.5, abs=1e-3)
    assert points["delta epsilon zeta"]["status"] == "missed"
    assert why["misconceptions"] == [
        {
            "misconception": "omega psi chi",
            "sentence": "omega psi chi is too",
            "similarity": pytest.approx(3 / 15**0.5, abs=1e-3),  # 5 words in the clause, 3 shared
            "by_alias": False,
            "feedback": "Omega is not involved.",
        }
    ]
    assert why["ungraded"] is None and why["language"] == "English"


def test_why_says_how_the_label_was_reached():
    """The cut-offs by default with another embedder; a given verdict head with its two probabilities."""
    from tfdojo.practice.grading.head import FEATURES, VerdictHead

    answer = "alpha beta gamma is here; omega psi chi is too."
    by_cut_offs = grade_free_text(RUBRIC, answer, embedder=BagOfWords(), thresholds=STRICT).why()["decision"]
    assert by_cut_offs == {"by": "cut-offs", "stated_errors": 1}
    n = len(FEATURES)
    sure = (0.0,) * n + (50.0,)  # bias 50: P = 1 - 2e-22 whatever the features
    head = VerdictHead(FEATURES, (0.0,) * n, (1.0,) * n, sure, sure, 0.5, 0.5, "test")
    grade = grade_free_text(RUBRIC, answer, embedder=BagOfWords(), thresholds=STRICT, head=head)
    assert grade.why()["decision"] == {"by": "head", "stated_errors": 1, "p_at_least_partial": 1.0, "p_correct": 1.0}
    assert grade.shown == "partial"  # correct by the head, one level lower for the stated misconception
    assert grade_free_text(RUBRIC, " ", embedder=BagOfWords()).why()["decision"] is None


def test_why_of_an_ungraded_answer_says_why():
    assert grade_free_text(RUBRIC, "  ", embedder=BagOfWords()).why()["ungraded"] == "empty"


@pytest.mark.parametrize(
    "answer",
    [
        "Die Aufmerksamkeit vergleicht jede Anfrage mit jedem Schlüssel, und die Gewichte summieren sich zu eins.",
        "La normalisation est appliquée avant chaque sous-couche et le flux résiduel n'est pas normalisé.",
        "El caché guarda las claves y los valores de los tokens anteriores para no recalcularlos.",
        "注意力机制将每个查询与每个键进行比较，然后对值进行加权平均。",
        "Механизм внимания сравнивает каждый запрос со всеми ключами.",
    ],
)
def test_a_non_english_answer_is_sent_back_with_a_message_not_a_silent_zero(answer):
    embedder = BagOfWords()
    grade = grade_free_text(RUBRIC, answer, embedder=embedder)
    assert grade.not_english and grade.why()["ungraded"] == "not-english"
    assert "English" in grade.feedback and embedder.calls == 0


@pytest.mark.parametrize(
    "answer",
    [
        "LayerNorm: y = (x − μ)/σ · γ + β; RMSNorm: y = x / RMS(x) · γ.",
        "softmax(QKᵀ/√d)V",
        "The KV cache (キャッシュ) stores the keys and values of past tokens so they are not recomputed.",
        "The model learns a Gestalt of features; the cache holds keys and values.",
    ],
)
def test_english_answers_with_formulas_or_a_foreign_word_are_english(answer):
    assert is_english(answer)


def test_appending_a_correct_sentence_never_removes_credit():
    """Property: for random answers, appending a key point's statement keeps every credited point and the score."""
    rng = random.Random(0)
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "omega", "psi", "chi", "the", "is", "not", "it"]
    for _ in range(30):
        sentences = [" ".join(rng.choices(words, k=rng.randint(2, 7))) for _ in range(rng.randint(1, 4))]
        answer = ". ".join(sentences) + "."
        before = grade_free_text(RUBRIC, answer, embedder=BagOfWords(), thresholds=STRICT)
        for point in RUBRIC.key_points:
            after = grade_free_text(RUBRIC, f"{answer} It is {point.text}.", embedder=BagOfWords(), thresholds=STRICT)
            lost = {p.point.text for p in before.covered} - {p.point.text for p in after.covered}
            assert not lost and after.score >= before.score, (answer, point.text)


@pytest.mark.slow
def test_minilm_appending_a_correct_sentence_never_removes_credit(minilm):
    """The same property with the real grader on bank rubrics, appending each key point's own statement."""
    from tfdojo.practice import load_bank

    bank = load_bank()
    cases = [
        ("kv-cache-purpose", "Each layer keeps the keys and values of past tokens, so decoding avoids recomputing."),
        ("layernorm-versus-rmsnorm", "RMSNorm divides by the root mean square and has only a gain, so it is cheaper."),
    ]
    for question, answer in cases:
        rubric = bank[question].rubric
        before = grade_free_text(rubric, answer)
        for point in rubric.key_points:
            after = grade_free_text(rubric, f"{answer} {point.text}.")
            lost = {p.point.text for p in before.covered} - {p.point.text for p in after.covered}
            assert not lost and after.score >= before.score, (question, point.text)
