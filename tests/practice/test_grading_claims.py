"""Claim reading: the negation misfires named in issue 9 (privative key points, a leading "instead of"), each with
the sentence that misfired, and the same sentences graded by the real MiniLM grader against bank rubrics."""

from __future__ import annotations

import grading_support
import pytest

from tfdojo.practice.grading import split_clauses
from tfdojo.practice.grading.clauses import states_negative

minilm = grading_support.minilm  # the shared fixture


def test_a_privative_key_point_is_a_negative_claim():
    """Regression: "no mean centering and no bias" denied "RMSNorm drops the mean centering and the bias"."""
    assert states_negative("RMSNorm drops the mean centering and the bias")
    assert states_negative("Caching avoids recomputing the whole prefix at every generation step")
    assert states_negative("The discriminator removes the [MASK] mismatch")
    assert not states_negative("Skip connections prevent the collapse")  # "prevent" is a claim, not an omission
    assert not states_negative("RMSNorm divides by the root mean square of the features")


def test_a_leading_instead_of_names_what_the_pronoun_stands_for():
    """Regression: "Instead of recomputing …, we store them" left "we store them" with nothing to match."""
    clauses = split_clauses("Instead of recomputing the keys and values at every step, we store them in a cache.")
    assert [(c.text, c.negated) for c in clauses] == [
        ("recomputing the keys and values at every step", True),
        ("we store the keys and values at every step in a cache", False),
    ]
    # a contrast inside the sentence keeps its own subject: nothing to resolve
    assert [c.text for c in split_clauses("We store them rather than the queries.")] == ["We store them", "the queries"]


@pytest.fixture(scope="module")
def bank():
    from tfdojo.practice import load_bank

    return load_bank()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "answer", "point"),
    [
        (
            "kv-cache-purpose",
            "Instead of recomputing the keys and values of the whole prefix at every step, we store them per layer.",
            "Caching avoids recomputing the whole prefix at every generation step",
        ),
        (
            "layernorm-versus-rmsnorm",
            "RMSNorm divides by the root mean square of the features with a gain: no mean centering and no bias.",
            "RMSNorm drops the mean centering and the bias",
        ),
    ],
)
def test_the_issue_sentences_are_credited_not_read_as_denials(minilm, bank, question, answer, point):
    from tfdojo.practice import grade_free_text

    grade = grade_free_text(bank[question].rubric, answer, embedder=minilm)
    assert point in [p.point.text for p in grade.covered], grade.feedback
    assert grade.uncertain == ()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("question", "answer"),
    [
        (  # issue 9: swapping the definitions of pre-LN and post-LN still gave partial
            "pre-ln-versus-post-ln",
            "Pre-LN applies the normalization after adding the sublayer output to the residual, and post-LN "
            "normalizes only the sublayer input, keeping an identity path; post-LN is the stable one.",
        ),
    ],
)
def test_the_issue_confident_wrong_answers_are_graded_incorrect(minilm, bank, question, answer):
    """Regression (failed before the contrastive key points): a swapped-definitions answer is not partial."""
    from tfdojo.practice import grade_free_text

    grade = grade_free_text(bank[question].rubric, answer, embedder=minilm)
    assert grade.shown == "incorrect", grade.to_json()
