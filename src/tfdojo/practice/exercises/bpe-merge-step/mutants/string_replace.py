"""Mutant: merges by str.replace on the space-joined word, which also matches across symbol boundaries."""

from collections import Counter

Word = tuple[str, ...]


def count_pairs(words: dict[Word, int]) -> dict[tuple[str, str], int]:
    """Correct counts."""
    counts: Counter[tuple[str, str]] = Counter()
    for word, freq in words.items():
        for pair in zip(word, word[1:], strict=False):
            counts[pair] += freq
    return dict(counts)


def most_frequent_pair(counts: dict[tuple[str, str], int]) -> tuple[str, str] | None:
    """Correct choice."""
    return min(counts, key=lambda pair: (-counts[pair], pair)) if counts else None


def merge_pair(words: dict[Word, int], pair: tuple[str, str]) -> dict[Word, int]:
    """'ab c' contains 'b c', so ("ab", "c") wrongly becomes ("abc",)."""
    merged: Counter[Word] = Counter()
    for word, freq in words.items():
        merged[tuple(" ".join(word).replace(" ".join(pair), "".join(pair)).split(" "))] += freq
    return dict(merged)


def bpe_merge_step(words: dict[Word, int]) -> tuple[dict[Word, int], tuple[str, str] | None]:
    """Correct step."""
    pair = most_frequent_pair(count_pairs(words))
    return (dict(words), None) if pair is None else (merge_pair(words, pair), pair)
