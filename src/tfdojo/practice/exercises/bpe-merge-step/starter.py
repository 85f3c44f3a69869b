"""One step of byte-pair-encoding training on a word-frequency table."""

Word = tuple[str, ...]


def count_pairs(words: dict[Word, int]) -> dict[tuple[str, str], int]:
    """Frequency-weighted count of every adjacent symbol pair (overlapping positions all count)."""
    raise NotImplementedError


def most_frequent_pair(counts: dict[tuple[str, str], int]) -> tuple[str, str] | None:
    """The pair with the highest count, ties to the smallest pair in tuple order; None if there are no pairs."""
    raise NotImplementedError


def merge_pair(words: dict[Word, int], pair: tuple[str, str]) -> dict[Word, int]:
    """A new table with every left-to-right, non-overlapping occurrence of `pair` fused into one symbol."""
    raise NotImplementedError


def bpe_merge_step(words: dict[Word, int]) -> tuple[dict[Word, int], tuple[str, str] | None]:
    """Count, pick the most frequent pair, merge it; (table, None) when nothing is left to merge."""
    raise NotImplementedError
