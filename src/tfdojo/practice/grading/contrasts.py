"""Contrastive key points: each key point with the wrong claims it is confused with, made by exchanging its terms.

A sentence embedder scores "the KV cache stores the queries" almost as close to "the cache stores the keys and
values" as a correct paraphrase: the words are the rubric's, the claim is not. So every key point gets *contrasts*,
the same sentence with one term exchanged for the one it is confused with (keys and values -> queries, pre-LN ->
post-LN, encoder -> decoder, memory-bound -> compute-bound, rows -> columns, before -> after, …), and both terms
exchanged when the point names both ("queries from the decoder, keys from the encoder"). A sentence of the answer
*contradicts* a point when it is closer to one of its contrasts than to the point itself and says the exchanged-in
term; it then cannot support the point (see ``free_text.decide``).

The pairs below are the subject's usual confusions, not answers: they apply to every rubric in the bank.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from tfdojo.practice.grading.words import contains_phrase

# (term, the term it is confused with); each pair works both ways. Longer phrases first: they win over their words.
CONFUSIONS: tuple[tuple[str, str], ...] = (
    ("keys and values", "queries"),
    ("key and value", "query"),
    ("memory-bandwidth bound", "compute bound"),
    ("memory-bound", "compute-bound"),
    ("memory bound", "compute bound"),
    ("sequence parallelism", "context parallelism"),
    ("optimizer states", "parameters"),
    ("multi-query", "grouped-query"),
    ("encoder-decoder attention", "self-attention"),
    ("within a node", "across nodes"),
    ("pre-LN", "post-LN"),
    ("pre-norm", "post-norm"),
    ("LayerNorm", "RMSNorm"),
    ("LayerNorm", "BatchNorm"),
    ("MQA", "GQA"),
    ("GPipe", "1F1B"),
    ("Kaplan", "Chinchilla"),
    ("generator", "discriminator"),
    ("encoder", "decoder"),
    ("encoders", "decoders"),
    ("queries", "keys"),
    ("query", "key"),
    ("rows", "columns"),
    ("row", "column"),
    ("columns", "rows"),
    ("before", "after"),
    ("earlier", "later"),
    ("previous", "future"),
    ("bidirectional", "causal"),
    ("bidirectionally", "causally"),
    ("input", "output"),
    ("first", "last"),
    ("more", "fewer"),
    ("larger", "smaller"),
    ("increases", "decreases"),
    ("grows", "shrinks"),
    ("faster", "slower"),
    ("higher", "lower"),
    ("better", "worse"),
    ("deeper", "wider"),
    ("thinner", "shallower"),
    ("prefill", "decode"),
    ("training", "inference"),
    ("maximum", "minimum"),
    ("once", "at every step"),
    ("weakly", "strongly"),
    ("every token", "only the masked tokens"),
)


@dataclass(frozen=True)
class Contrast:
    """A wrong version of a key point, and the term it says that the point does not (an answer must say it too)."""

    text: str
    term: str


def _swap(text: str, pattern: re.Pattern[str], table: dict[str, str]) -> str:
    """Replace every match of ``pattern`` by its partner in ``table``, keeping a leading capital."""

    def partner(match: re.Match[str]) -> str:
        word = match.group(0)
        other = table[word.lower()]
        return other[0].upper() + other[1:] if word[0].isupper() and not other[0].isupper() else other

    return pattern.sub(partner, text)


_COMPOUND = re.compile(r"\w+(?:-\w+)+")


def says_term(text: str, term: str) -> bool:
    """Whether a sentence says a contrast's term on its own: "query" is not said by "multi-query attention"."""
    if "-" not in term:
        text = _COMPOUND.sub(" ", text)
    return contains_phrase(text, term)


@cache
def contrasts(point: str) -> tuple[Contrast, ...]:
    """The wrong versions of a key point: one per confusion pair whose terms it uses, both terms exchanged at once."""
    found: list[Contrast] = []
    seen = {point.lower()}
    for a, b in CONFUSIONS:
        has_a, has_b = says_term(point, a), says_term(point, b)
        if not (has_a or has_b):
            continue
        pairs = [(a, b), (b, a)] if has_a and has_b else ([(a, b)] if has_a else [(b, a)])
        table = {x.lower(): y for x, y in pairs}
        # Not inside a hyphenated name: swapping "query" for "key" must leave "multi-query attention" alone.
        pattern = re.compile(r"(?<![\w-])(?:" + "|".join(re.escape(t) for t in table) + r")(?![\w-])", re.IGNORECASE)
        text = _swap(point, pattern, table)
        if text.lower() not in seen:
            seen.add(text.lower())
            found.append(Contrast(text, b if has_a else a))
    return tuple(found)
