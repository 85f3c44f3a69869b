"""Word error rate: (substitutions + deletions + insertions) / words in the reference, by edit distance on words.

Both texts are normalised first — lower case, hyphens and slashes become spaces, other punctuation is dropped —
so "Self-attention, so" and "self attention so" are the same three words. Numbers are left as written: a clip that
says "thirty two" and a transcript that reads "32" differ by two words, which is what a reader would see too.
"""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[-/]")
_PUNCTUATION = re.compile(r"[^\w\s']")


def normalize_words(text: str) -> list[str]:
    """Lower-cased words without punctuation (apostrophes kept inside words: "don't")."""
    text = _PUNCTUATION.sub(" ", _SEPARATORS.sub(" ", text.lower()))
    return [w.strip("'") for w in text.split() if w.strip("'")]


def word_edits(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance between two word lists (one row of the dynamic-programming table at a time)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, start=1):
        current = [i]
        for j, hyp in enumerate(hypothesis, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp)))
        previous = current
    return previous[-1]


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Edits needed to turn the reference's words into the hypothesis's, per reference word (0 = identical)."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    if not ref:
        return float(bool(hyp))
    return word_edits(ref, hyp) / len(ref)
