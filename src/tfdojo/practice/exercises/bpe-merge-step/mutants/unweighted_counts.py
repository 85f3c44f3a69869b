"""Mutant: counts each distinct word once, ignoring how often it occurs."""

from collections import Counter

Word = tuple[str, ...]


def count_pairs(words: dict[Word, int]) -> dict[tuple[str, str], int]:
    """Forgets the frequency."""
    counts: Counter[tuple[str, str]] = Counter()
    for word in words:
        for pair in zip(word, word[1:], strict=False):
            counts[pair] += 1
    return dict(counts)


def most_frequent_pair(counts: dict[tuple[str, str], int]) -> tuple[str, str] | None:
    """Correct choice."""
    return min(counts, key=lambda pair: (-counts[pair], pair)) if counts else None


def merge_pair(words: dict[Word, int], pair: tuple[str, str]) -> dict[Word, int]:
    """Correct merge."""
    merged: Counter[Word] = Counter()
    for word, freq in words.items():
        out: list[str] = []
        i = 0
        while i < len(word):
            if word[i : i + 2] == pair:
                out.append(pair[0] + pair[1])
                i += 2
            else:
                out.append(word[i])
                i += 1
        merged[tuple(out)] += freq
    return dict(merged)


def bpe_merge_step(words: dict[Word, int]) -> tuple[dict[Word, int], tuple[str, str] | None]:
    """Correct step."""
    pair = most_frequent_pair(count_pairs(words))
    return (dict(words), None) if pair is None else (merge_pair(words, pair), pair)
