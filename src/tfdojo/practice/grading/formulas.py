"""Reading a formula-style answer aloud before it is embedded: "softmax(QKᵀ/√d)V" is opaque to a sentence encoder.

Symbols become the words a speaker would use (√ -> "square root of", ᵀ -> "transpose", ≈ -> "about", → -> "gives"),
and the one-letter names of attention (Q, K, V) and of norms (LN) become their words. Only the text that is embedded
changes; the clause shown to the learner keeps what they wrote.
"""

from __future__ import annotations

import re

_SYMBOLS = {
    "√": " square root of ",
    "ᵀ": " transpose ",
    "Σ": " sum of ",
    "∑": " sum of ",
    "≈": " about ",
    "~": " about ",
    "→": " gives ",
    "⇒": " so ",
    "∝": " proportional to ",
    "≤": " at most ",
    "≥": " at least ",
    "<": " less than ",
    ">": " greater than ",
    "×": " times ",
    "·": " times ",
    "⊙": " element-wise times ",
    "∞": " infinity ",
    "²": " squared ",
    "∈": " in ",
    "=": " equals ",
    "+": " plus ",
}
_NAMES = {
    "Q": "queries",
    "K": "keys",
    "V": "values",
    "QK": "queries keys",
    "LN": "layer norm",
    "MLP": "MLP feed-forward",
    "FFN": "feed-forward network",
    "attn": "attention",
    "Attn": "attention",
    "CE": "cross-entropy",
    "KV": "keys and values",
}
_SYMBOL = re.compile("|".join(re.escape(s) for s in sorted(_SYMBOLS, key=len, reverse=True)))
_NAME = re.compile(r"(?<![\w-])(" + "|".join(sorted(_NAMES, key=len, reverse=True)) + r")(?![\w-])")
_MINUS_INFINITY = re.compile(r"[-−]\s*(?:∞|inf\b)")


def read_symbols(text: str) -> str:
    """The text with its symbols and one-letter names spelled out (unchanged when it has none)."""
    text = _MINUS_INFINITY.sub(" minus infinity ", text)
    text = _SYMBOL.sub(lambda m: _SYMBOLS[m.group(0)], text)
    text = _NAME.sub(lambda m: _NAMES[m.group(1)], text)
    return re.sub(r"\s+", " ", text).strip()
