import torch

from tfdojo.nn.masks import as_additive, causal_mask


def test_square_mask_is_lower_triangle(sub) -> None:
    got = sub.causal_mask(5, 5)
    assert got.dtype == torch.bool, f"expected a bool mask, got {got.dtype}"
    assert got.shape == (5, 5), f"expected shape (5, 5), got {tuple(got.shape)}"
    assert torch.equal(got, torch.ones(5, 5, dtype=torch.bool).tril()), "a square causal mask is the lower triangle"


def test_queries_aligned_to_end_of_keys(sub) -> None:
    for t, s in [(3, 7), (2, 2), (4, 9), (1, 6)]:
        got = sub.causal_mask(t, s)
        assert torch.equal(got, causal_mask(t, s)), f"causal_mask({t}, {s}) is wrong: query i sits at s - t + i"


def test_single_decode_step_sees_every_key(sub) -> None:
    assert bool(sub.causal_mask(1, 8).all()), "one query at the last position may see all 8 keys"


def test_masked_softmax_matches_additive_mask(sub) -> None:
    torch.manual_seed(0)
    scores = torch.randn(2, 3, 4, 6, dtype=torch.float64)
    mask = causal_mask(4, 6)
    want = torch.softmax(scores + as_additive(mask, torch.float64), dim=-1)
    got = sub.masked_softmax(scores, mask)
    torch.testing.assert_close(got, want)
    assert bool((got[..., ~mask] == 0).all()), "masked keys must get probability exactly 0"


def test_fully_masked_row_is_zero_not_nan(sub) -> None:
    scores = torch.randn(3, 4)
    mask = torch.tensor([[True, False, True, True], [False, False, False, False], [True, True, True, True]])
    got = sub.masked_softmax(scores, mask)
    assert not bool(got.isnan().any()), "a row with every key masked must not produce NaN"
    assert bool((got[1] == 0).all()), "a fully masked row has no weights"
    torch.testing.assert_close(got[0].sum(), torch.tensor(1.0))
