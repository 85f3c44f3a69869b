"""Keyword salad: an answer that lists the rubric's terms without stating anything about them."""

from __future__ import annotations

from collections.abc import Sequence

from tfdojo.practice.grading.words import STOPWORDS, claim_verbs, stem, tokens

MIN_TERMS = 3  # fewer rubric terms than this is too short to call a list
TERMS_PER_VERB = 5  # more rubric terms per verb than this reads as a list, not as claims


def salad_terms(texts: Sequence[str], vocabulary: frozenset[str]) -> tuple[str, ...]:
    """The rubric terms an answer lists when it makes (almost) no claim about them; empty when it states something.

    A claim needs a verb ("grows", "is", "keeps"); a list of terms has rubric words and hardly any verbs.
    """
    text = " ".join(texts)
    terms = [t for t in tokens(text) if t not in STOPWORDS and stem(t) in vocabulary]
    distinct = tuple(dict.fromkeys(terms))
    if len(distinct) >= MIN_TERMS and len(terms) > TERMS_PER_VERB * len(claim_verbs(text)):
        return distinct
    return ()
