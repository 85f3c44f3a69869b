"""Word error rate on hand-counted examples (substitutions, deletions, insertions; normalisation)."""

import pytest

from tfdojo.infer.wer import normalize_words, word_error_rate


def test_normalisation_drops_case_and_punctuation_and_splits_hyphens():
    assert normalize_words("Self-attention, so: it DOESN'T scale!") == [
        "self",
        "attention",
        "so",
        "it",
        "doesn't",
        "scale",
    ]


@pytest.mark.parametrize(
    ("reference", "hypothesis", "rate"),
    [
        ("the key value cache", "the key value cache.", 0.0),
        ("the key value cache", "the key valley cache", 1 / 4),  # one substitution
        ("the key value cache", "the cache", 2 / 4),  # two deletions
        ("the cache", "the big big cache", 2 / 2),  # two insertions
        ("thirty two heads", "32 heads", 2 / 3),  # numbers compared as written: one substitution, one deletion
        ("", "", 0.0),
        ("", "noise", 1.0),
    ],
)
def test_hand_counted_rates(reference, hypothesis, rate):
    assert word_error_rate(reference, hypothesis) == pytest.approx(rate)
