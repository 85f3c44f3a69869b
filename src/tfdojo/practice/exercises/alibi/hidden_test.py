import torch

from tfdojo.nn.attention import scaled_dot_product
from tfdojo.nn.masks import alibi_bias, query_positions
from tfdojo.nn.positions import alibi_slopes


def test_power_of_two_slopes(sub) -> None:
    got = sub.alibi_slopes(8)
    want = torch.tensor([2.0**-k for k in range(1, 9)])  # the paper's 1/2, 1/4, ..., 1/256
    assert got.dtype == torch.float32, f"expected float32 slopes, got {got.dtype}"
    torch.testing.assert_close(got, want)


def test_slopes_for_every_head_count(sub) -> None:
    for n in [1, 2, 3, 5, 6, 12, 16, 20]:
        torch.testing.assert_close(sub.alibi_slopes(n), alibi_slopes(n), msg=f"slopes for {n} heads")


def test_square_bias_matches_reference(sub) -> None:
    for n, t in [(4, 5), (6, 3)]:
        want = alibi_bias(alibi_slopes(n), query_positions(t, t), torch.arange(t))
        torch.testing.assert_close(sub.alibi_bias(n, t, t).float(), want, msg=f"bias for {n} heads, t = s = {t}")


def test_decode_bias_is_aligned_to_the_end(sub) -> None:
    want = alibi_bias(alibi_slopes(4), query_positions(2, 6), torch.arange(6))
    got = sub.alibi_bias(4, 2, 6)
    assert got.shape == (4, 2, 6), f"expected shape (4, 2, 6), got {tuple(got.shape)}"
    torch.testing.assert_close(got.float(), want)
    assert bool((got[:, -1, -1] == 0).all()), "the last query's own position gets no penalty"


def test_bias_inside_attention(sub) -> None:
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 4, 5, 8, dtype=torch.float64, generator=g) for _ in range(3))
    want = scaled_dot_product(q, k, v, causal=True, alibi_slopes=alibi_slopes(4).double())
    keep = torch.ones(5, 5, dtype=torch.bool).tril()
    scores = q @ k.transpose(-2, -1) / 8**0.5 + sub.alibi_bias(4, 5, 5).double()
    got = torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1) @ v
    torch.testing.assert_close(got, want)


def test_zero_heads_raises(sub) -> None:
    try:
        sub.alibi_slopes(0)
    except ValueError:
        return
    raise AssertionError("alibi_slopes(0) must raise ValueError")
