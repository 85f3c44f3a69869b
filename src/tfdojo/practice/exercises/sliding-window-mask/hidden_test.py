"""Hidden tests for sliding-window masks: tfdojo.nn.masks.window_mask and eager attention (window=) are the oracle."""

import torch

from tfdojo.nn.attention import eager_attention
from tfdojo.nn.masks import window_mask


def test_hand_example(sub) -> None:
    expected = torch.tensor(
        [[1, 0, 0, 0, 0], [1, 1, 0, 0, 0], [1, 1, 1, 0, 0], [0, 1, 1, 1, 0], [0, 0, 1, 1, 1]], dtype=torch.bool
    )
    mask = sub.sliding_window_mask(5, 5, 3)
    assert mask.dtype == torch.bool and mask.shape == (5, 5)
    assert torch.equal(mask, expected)


def test_matches_reference_masks(sub) -> None:
    for t, s in ((7, 7), (3, 10), (1, 9), (6, 6)):
        for window in (1, 2, 4, 12):
            for causal in (True, False):
                got = sub.sliding_window_mask(t, s, window, causal=causal)
                assert torch.equal(got, window_mask(t, s, window, causal=causal)), (t, s, window, causal)


def test_two_sided_band(sub) -> None:
    mask = sub.sliding_window_mask(4, 4, 2, causal=False)
    expected = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0], [0, 1, 1, 1], [0, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(mask, expected)


def test_decode_step_sees_the_last_window_keys(sub) -> None:
    mask = sub.sliding_window_mask(1, 8, 3)
    assert mask.tolist() == [[False] * 5 + [True] * 3]


def test_window_of_zero_is_refused(sub) -> None:
    try:
        sub.sliding_window_mask(4, 4, 0)
    except ValueError:
        return
    raise AssertionError("window=0 hides every key and must raise ValueError")


def test_attention_matches_eager(sub) -> None:
    g = torch.Generator().manual_seed(0)
    for t, s, window, causal in ((9, 9, 3, True), (4, 12, 5, True), (8, 8, 2, False), (1, 6, 6, True)):
        q = torch.randn(2, 3, t, 8, generator=g, dtype=torch.float64)
        k, v = (torch.randn(2, 3, s, 8, generator=g, dtype=torch.float64) for _ in range(2))
        got = sub.sliding_window_attention(q, k, v, window, causal=causal)
        torch.testing.assert_close(got, eager_attention(q, k, v, causal=causal, window=window))


def test_large_window_is_plain_causal_attention(sub) -> None:
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 6, 4, generator=g) for _ in range(3))
    got = sub.sliding_window_attention(q, k, v, 100)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, eager_attention(q, k, v, causal=True))
