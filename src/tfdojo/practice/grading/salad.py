"""Keyword salad: an answer that lists the rubric's terms without stating anything about them.

The answer is cut at commas, semicolons, colons, full stops and new lines. A *list item* is a fragment of at most
four words with no verb ("tied embeddings", "KV cache", "20 tokens per parameter"). An answer is salad when it names
at least three rubric terms and is mostly list items, or is one run of words with neither a verb nor a function word.
"""

from __future__ import annotations

import re

from tfdojo.practice.grading.words import STOPWORDS, has_claim_verb, stem, tokens

MIN_TERMS = 3  # fewer rubric terms than this is too little to call a list of them
MIN_ITEMS = 3  # a list has at least this many fragments
LIST_SHARE = 0.8  # the share of fragments that must be list items
ITEM_WORDS = 4  # the longest fragment that counts as a list item

_FRAGMENT = re.compile(r"[,;:\n]+|\.(?:\s|$)")


def _is_list_item(fragment: str) -> bool:
    return len(tokens(fragment)) <= ITEM_WORDS and not has_claim_verb(fragment)


def salad_terms(answer: str, vocabulary: frozenset[str]) -> tuple[str, ...]:
    """The rubric terms an answer lists without making a claim about them; empty when the answer states something."""
    words = tokens(answer)
    terms = tuple(dict.fromkeys(t for t in words if t not in STOPWORDS and stem(t) in vocabulary))
    if len(terms) < MIN_TERMS:
        return ()
    fragments = [f for f in _FRAGMENT.split(answer) if tokens(f)]
    listed = sum(_is_list_item(f) for f in fragments)
    is_list = len(fragments) >= MIN_ITEMS and listed >= LIST_SHARE * len(fragments)
    is_run = not has_claim_verb(answer) and not any(w in STOPWORDS for w in words)
    return terms if is_list or is_run else ()
