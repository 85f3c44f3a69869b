"""Answers must be in English: the rubrics, the embedder (all-MiniLM-L6-v2) and the negation reader are English-only.

An answer is *not English* when most of its letters (in words of two letters or more) are in another script
(Cyrillic, Greek, CJK, Arabic, …), or when it is written in Latin letters but uses the function words of French,
German, Spanish, Italian, Portuguese or Dutch more often than English ones. Symbols and single letters (μ, σ, √,
QKᵀ) do not count as words, so a formula in an English answer does not trip it. The grader then says so instead of
returning a silent 0.
"""

from __future__ import annotations

import re

from tfdojo.practice.grading.words import STOPWORDS, word_set

EXPECTED_LANGUAGE = "English"
NOT_ENGLISH = (
    "Your answer does not look like English. Answers are graded in English only (the rubrics and the model are "
    "English): write it again in English."
)

_WORD = re.compile(r"[^\W\d_]{2,}")  # runs of at least two letters, any script
_LATIN = re.compile(r"^[a-zA-Z\u00c0-\u024f]+$")
# Function words of other languages written in Latin letters, less the ones English shares ("a", "in", "no", …).
_FOREIGN = (
    word_set(
        "le la les des du une est sont que qui dans pour avec pas sur ce cette ces mais ou aux nous vous ils elle "
        "der die das und ist nicht mit für von den dem ein eine einen zu auf wird werden sich auch oder wenn wie "
        "el los las del es y en un una por con para se su sus lo al más pero como muy también "
        "il di che è per non della delle gli sono nel alla anche più questo questa "
        "os da do dos das um uma é não são ao pelo pela mais também "
        "het een van en is niet met voor zijn op te dat wordt worden ook"
    )
    - STOPWORDS
)
MIN_FOREIGN_LETTERS = 6  # letters in another script, more than the Latin ones (CJK writes no spaces: count letters)
MIN_FOREIGN_WORDS = 3  # foreign function words, more than the English ones


def is_english(answer: str) -> bool:
    """Whether an answer is (mostly) English; very short or symbol-only answers count as English."""
    words = [w.lower() for w in _WORD.findall(answer)]
    if not words:
        return True
    other_script = sum(len(w) for w in words if not _LATIN.match(w))
    if other_script >= MIN_FOREIGN_LETTERS and other_script > sum(len(w) for w in words) - other_script:
        return False
    foreign = sum(w in _FOREIGN for w in words)
    english = sum(w in STOPWORDS for w in words)
    return not (foreign >= MIN_FOREIGN_WORDS and foreign > english)
