"""Claim reading: the negation misfires named in issue 9 (privative key points, a leading "instead of"), each with
the sentence that misfired, and the same sentences graded by the real MiniLM grader against bank rubrics."""

from __future__ import annotations

import grading_support
import pytest

from tfdojo.practice.grading import split_clauses
from tfdojo.practice.grading.clauses import states_negative
from tfdojo.practice.grading.contrasts import contrasts, says_term

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


def test_a_contrast_exchanges_whole_terms_not_parts_of_a_hyphenated_name():
    """Regression: swapping query <-> key and value also rewrote "Multi-query attention" as "Multi-key and value
    attention", so the wrong version named another thing and "MQA shares the query projection" was never held to it."""
    point = "Multi-query attention shares a single key and value head across all query heads"
    texts = [c.text for c in contrasts(point)]
    assert "Multi-query attention shares a single query head across all key and value heads" in texts
    assert not any("Multi-key" in t for t in texts)
    assert not says_term("multi-query attention shares one cache", "query")
    assert says_term("it shares the query projection", "query") and says_term("use multi-query", "multi-query")


def test_staying_the_same_denies_a_change():
    """Regression (issue 9's GQA answer): "the KV cache stays the same size" was read as "sharing shrinks the cache"."""
    for text in ("the KV cache stays the same size", "the cache remains the same", "the memory is unchanged"):
        assert split_clauses(text)[0].negated, text
    assert not split_clauses("it is the same weight at every position")[0].negated
    assert states_negative("Subtracting the row maximum before exponentiating leaves the softmax unchanged")


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
