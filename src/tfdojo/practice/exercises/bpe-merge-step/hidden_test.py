"""Hidden tests for one BPE step: hand-computed counts and merges, Sennrich et al.'s toy corpus."""


def _corpus() -> dict[tuple[str, ...], int]:
    words = {"low": 5, "lower": 2, "newest": 6, "widest": 3}
    return {(*w, "</w>"): n for w, n in words.items()}


def test_count_pairs_weighted_by_frequency(sub) -> None:
    counts = sub.count_pairs({("a", "b", "c"): 3, ("b", "c"): 2, ("x",): 9})
    assert counts == {("a", "b"): 3, ("b", "c"): 5}


def test_count_pairs_counts_overlaps(sub) -> None:
    assert sub.count_pairs({("a", "a", "a"): 1, ("a", "a"): 4}) == {("a", "a"): 6}


def test_sennrich_counts(sub) -> None:
    counts = sub.count_pairs(_corpus())
    assert counts[("e", "s")] == 9 and counts[("s", "t")] == 9 and counts[("t", "</w>")] == 9
    assert counts[("l", "o")] == 7 and counts[("w", "e")] == 8 and counts[("n", "e")] == 6
    assert sum(counts.values()) == 5 * 3 + 2 * 5 + 6 * 6 + 3 * 6


def test_tie_break_is_the_smallest_pair(sub) -> None:
    assert sub.most_frequent_pair({("x", "y"): 3, ("a", "b"): 3, ("a", "a"): 2}) == ("a", "b")
    assert sub.most_frequent_pair({("b", "z"): 4, ("b", "a"): 4, ("c", "a"): 5}) == ("c", "a")
    assert sub.most_frequent_pair({}) is None


def test_merge_is_left_to_right_without_overlap(sub) -> None:
    merged = sub.merge_pair({("a", "a", "a"): 1, ("a", "a", "a", "a"): 2, ("b", "a", "a"): 1}, ("a", "a"))
    assert merged == {("aa", "a"): 1, ("aa", "aa"): 2, ("b", "aa"): 1}


def test_merge_matches_whole_symbols_only(sub) -> None:
    words = {("ab", "c"): 1, ("x", "b", "c"): 2, ("b", "cd"): 3}
    assert sub.merge_pair(words, ("b", "c")) == {("ab", "c"): 1, ("x", "bc"): 2, ("b", "cd"): 3}


def test_merge_adds_frequencies_of_words_that_collide(sub) -> None:
    words = {("a", "b", "c"): 2, ("ab", "c"): 5}
    before = dict(words)
    assert sub.merge_pair(words, ("a", "b")) == {("ab", "c"): 7}
    assert words == before  # the input is left alone


def test_sennrich_first_four_merges(sub) -> None:
    words = _corpus()
    merges = []
    for _ in range(4):
        words, pair = sub.bpe_merge_step(words)
        merges.append(pair)
    assert merges == [("e", "s"), ("es", "t"), ("est", "</w>"), ("l", "o")]
    assert words[("n", "e", "w", "est</w>")] == 6 and words[("lo", "w", "</w>")] == 5


def test_step_without_pairs_returns_none(sub) -> None:
    words = {("low</w>",): 5, ("a",): 1}
    new, pair = sub.bpe_merge_step(words)
    assert pair is None and new == words
