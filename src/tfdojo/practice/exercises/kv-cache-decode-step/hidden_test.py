import torch

from tfdojo.infer.cache import StaticKVCache
from tfdojo.nn.attention import scaled_dot_product


def sequence(b, h, n, d, seed):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, h, n, d, generator=g, dtype=torch.float64) for _ in range(3)]


def test_append_stores_and_returns_the_prefix(sub) -> None:
    _, k, v = sequence(2, 3, 5, 4, seed=0)
    cache = sub.KVCache(2, 3, 8, 4, dtype=torch.float64)
    assert cache.length == 0, "a new cache is empty"
    cache.append(k[:, :, :3], v[:, :, :3])
    keys, values = cache.append(k[:, :, 3:5], v[:, :, 3:5])
    assert cache.length == 5, f"after 3 + 2 positions length is 5, got {cache.length}"
    ref = StaticKVCache(1, 2, 3, 8, 4, dtype=torch.float64)  # one layer
    ref.update(0, k[:, :, :3], v[:, :, :3])
    ref.advance(3)
    want_k, want_v = ref.update(0, k[:, :, 3:5], v[:, :, 3:5])
    torch.testing.assert_close(keys, want_k)
    torch.testing.assert_close(values, want_v)


def test_token_by_token_equals_full_causal_attention(sub) -> None:
    q, k, v = sequence(2, 2, 6, 8, seed=1)
    cache = sub.KVCache(2, 2, 6, 8, dtype=torch.float64)
    outs = [sub.decode_step(q[:, :, i : i + 1], k[:, :, i : i + 1], v[:, :, i : i + 1], cache) for i in range(6)]
    torch.testing.assert_close(torch.cat(outs, dim=2), scaled_dot_product(q, k, v, causal=True))


def test_prefill_then_decode_equals_full_causal_attention(sub) -> None:
    q, k, v = sequence(1, 4, 7, 8, seed=2)
    cache = sub.KVCache(1, 4, 10, 8, dtype=torch.float64)
    prefill = sub.decode_step(q[:, :, :4], k[:, :, :4], v[:, :, :4], cache)
    step = sub.decode_step(q[:, :, 4:5], k[:, :, 4:5], v[:, :, 4:5], cache)
    chunk = sub.decode_step(q[:, :, 5:7], k[:, :, 5:7], v[:, :, 5:7], cache)
    full = scaled_dot_product(q, k, v, causal=True)
    torch.testing.assert_close(prefill, full[:, :, :4], msg="the prefill")
    torch.testing.assert_close(step, full[:, :, 4:5], msg="one decode step after the prefill")
    torch.testing.assert_close(chunk, full[:, :, 5:7], msg="two new tokens at once after the cache")


def test_float32_cache(sub) -> None:
    q, k, v = (t.float() for t in sequence(1, 2, 3, 4, seed=3))
    cache = sub.KVCache(1, 2, 3, 4)
    got = torch.cat(
        [sub.decode_step(q[:, :, i : i + 1], k[:, :, i : i + 1], v[:, :, i : i + 1], cache) for i in range(3)], 2
    )
    assert got.dtype == torch.float32, f"expected float32, got {got.dtype}"
    torch.testing.assert_close(got, scaled_dot_product(q, k, v, causal=True))


def test_overflow_raises_and_keeps_the_cache(sub) -> None:
    _, k, v = sequence(1, 1, 4, 2, seed=4)
    cache = sub.KVCache(1, 1, 3, 2, dtype=torch.float64)
    cache.append(k[:, :, :2], v[:, :, :2])
    try:
        cache.append(k[:, :, 2:4], v[:, :, 2:4])
    except ValueError:
        assert cache.length == 2, "a refused append must leave the cache as it was"
        return
    raise AssertionError("appending past max_len must raise ValueError")
