"""Keyword salad: an answer that lists the rubric's terms without stating anything about them.

The answer is cut at commas, semicolons, colons, full stops and new lines. A *list item* is a fragment of at most
four words with no verb, no linking word and no relation sign ("tied embeddings", "KV cache", "deep and thin"). An
answer is salad when it names at least three rubric terms and is mostly list items, or is one run of words with
neither a verb, a function word nor a relation sign.

A terse answer is a list too, but its fragments relate their terms: "predicted from both sides", "loss only there",
"padding only, no causal mask", "y = x / rms(x)". Counting such fragments as list items screened out terse correct
answers as salad (5 of the calibration half's 42 terse answers, all labelled correct, before the linking words and
relation signs were read).
"""

from __future__ import annotations

import re

from tfdojo.practice.grading.words import STOPWORDS, has_claim_verb, stem, tokens

MIN_TERMS = 3  # fewer rubric terms than this is too little to call a list of them
MIN_ITEMS = 3  # a list has at least this many fragments
LIST_SHARE = 0.8  # the share of fragments that must be list items
ITEM_WORDS = 4  # the longest fragment that counts as a list item

_FRAGMENT = re.compile(r"[,;:\n]+|\.(?:\s|$)")
# Function words that relate the terms of a fragment ("of", "per", "only", "no", "from"); "and" / "or" only join them.
_LINKING = STOPWORDS - {"and", "or"}
_RELATION_SIGNS = re.compile(r"[=<>≤≥≈→⇒÷×∝]")


def _is_list_item(fragment: str) -> bool:
    words = tokens(fragment)
    return (
        len(words) <= ITEM_WORDS
        and not has_claim_verb(fragment)
        and not any(w in _LINKING for w in words)
        and not _RELATION_SIGNS.search(fragment)
    )


def salad_terms(answer: str, vocabulary: frozenset[str]) -> tuple[str, ...]:
    """The rubric terms an answer lists without making a claim about them; empty when the answer states something."""
    words = tokens(answer)
    terms = tuple(dict.fromkeys(t for t in words if t not in STOPWORDS and stem(t) in vocabulary))
    if len(terms) < MIN_TERMS:
        return ()
    fragments = [f for f in _FRAGMENT.split(answer) if tokens(f)]
    listed = sum(_is_list_item(f) for f in fragments)
    is_list = len(fragments) >= MIN_ITEMS and listed >= LIST_SHARE * len(fragments)
    is_run = (
        not has_claim_verb(answer) and not any(w in STOPWORDS for w in words) and not _RELATION_SIGNS.search(answer)
    )
    return terms if is_list or is_run else ()
