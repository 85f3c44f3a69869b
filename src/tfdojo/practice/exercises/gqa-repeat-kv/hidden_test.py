import torch

from tfdojo.nn.attention import scaled_dot_product


def qkv(b, hq, hkv, t, s, d, seed):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(b, hq, t, d, generator=g, dtype=torch.float64),
        torch.randn(b, hkv, s, d, generator=g, dtype=torch.float64),
        torch.randn(b, hkv, s, d, generator=g, dtype=torch.float64),
    )


def test_repeat_kv_order(sub) -> None:
    x = torch.arange(2.0).view(1, 2, 1, 1)  # kv heads 0 and 1
    got = sub.repeat_kv(x, 3)
    assert got.shape == (1, 6, 1, 1), f"expected shape (1, 6, 1, 1), got {tuple(got.shape)}"
    assert got.flatten().tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0], "each kv head is repeated n_rep times in a row"


def test_repeat_kv_matches_repeat_interleave(sub) -> None:
    x = torch.randn(2, 3, 5, 4, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(sub.repeat_kv(x, 4), x.repeat_interleave(4, dim=1))
    torch.testing.assert_close(sub.repeat_kv(x, 1), x)


def test_gqa_matches_reference(sub) -> None:
    q, k, v = qkv(2, 8, 2, 5, 5, 16, seed=1)
    torch.testing.assert_close(sub.grouped_query_attention(q, k, v), scaled_dot_product(q, k, v))
    torch.testing.assert_close(
        sub.grouped_query_attention(q, k, v, causal=True), scaled_dot_product(q, k, v, causal=True)
    )


def test_mqa_and_plain_mha(sub) -> None:
    q, k, v = qkv(1, 4, 1, 6, 6, 8, seed=2)
    torch.testing.assert_close(
        sub.grouped_query_attention(q, k, v, causal=True), scaled_dot_product(q, k, v, causal=True)
    )
    q, k, v = qkv(1, 3, 3, 4, 4, 8, seed=3)
    torch.testing.assert_close(sub.grouped_query_attention(q, k, v), scaled_dot_product(q, k, v))


def test_more_keys_than_queries(sub) -> None:
    q, k, v = qkv(2, 6, 3, 1, 7, 8, seed=4)  # one decode step over 7 cached keys
    torch.testing.assert_close(sub.grouped_query_attention(q, k, v), scaled_dot_product(q, k, v))


def test_heads_not_divisible_raises(sub) -> None:
    q, k, v = qkv(1, 5, 2, 3, 3, 4, seed=5)
    try:
        sub.grouped_query_attention(q, k, v)
    except ValueError:
        return
    raise AssertionError("5 query heads over 2 kv heads must raise ValueError")
