"""One step of byte-pair-encoding training on a word-frequency table."""

from collections import Counter

Word = tuple[str, ...]


def count_pairs(words: dict[Word, int]) -> dict[tuple[str, str], int]:
    """Frequency-weighted count of every adjacent symbol pair (overlapping positions all count)."""
    counts: Counter[tuple[str, str]] = Counter()
    for word, freq in words.items():
        for pair in zip(word, word[1:], strict=False):
            counts[pair] += freq
    return dict(counts)


def most_frequent_pair(counts: dict[tuple[str, str], int]) -> tuple[str, str] | None:
    """The pair with the highest count, ties to the smallest pair in tuple order; None if there are no pairs."""
    if not counts:
        return None
    return min(counts, key=lambda pair: (-counts[pair], pair))


def _merge_word(word: Word, pair: tuple[str, str]) -> Word:
    merged: list[str] = []
    i = 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            merged.append(word[i] + word[i + 1])
            i += 2  # the fused symbol cannot start another match
        else:
            merged.append(word[i])
            i += 1
    return tuple(merged)


def merge_pair(words: dict[Word, int], pair: tuple[str, str]) -> dict[Word, int]:
    """A new table with every left-to-right, non-overlapping occurrence of `pair` fused into one symbol."""
    merged: Counter[Word] = Counter()
    for word, freq in words.items():
        merged[_merge_word(word, pair)] += freq  # two words may become one: their counts add
    return dict(merged)


def bpe_merge_step(words: dict[Word, int]) -> tuple[dict[Word, int], tuple[str, str] | None]:
    """Count, pick the most frequent pair, merge it; (table, None) when nothing is left to merge."""
    pair = most_frequent_pair(count_pairs(words))
    if pair is None:
        return dict(words), None
    return merge_pair(words, pair), pair
