"""Hidden tests for the attention backward: autograd through tfdojo's eager attention (fp64) is the reference."""

import torch

from tfdojo.nn.attention import eager_attention


def _inputs(b: int, h: int, t: int, s: int, d: int, seed: int, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, h, t, d, generator=g, dtype=dtype)
    k, v = (torch.randn(b, h, s, d, generator=g, dtype=dtype) for _ in range(2))
    return q, k, v, torch.randn(b, h, t, d, generator=g, dtype=dtype)


def _reference(q, k, v, grad_out, causal: bool, scale=None):
    leaves = [x.detach().clone().requires_grad_() for x in (q, k, v)]
    out = eager_attention(*leaves, causal=causal, scale=scale)
    return torch.autograd.grad(out, leaves, grad_out)


def _check(sub, q, k, v, grad_out, causal: bool, scale=None) -> None:
    got = sub.attention_backward(q, k, v, grad_out, causal=causal, scale=scale)
    want = _reference(q, k, v, grad_out, causal, scale)
    for name, g, w, x in zip("qkv", got, want, (q, k, v), strict=True):
        assert g.shape == x.shape and g.dtype == x.dtype, f"d{name}: {tuple(g.shape)} {g.dtype}"
        torch.testing.assert_close(g, w, msg=lambda m, n=name: f"d{n}: {m}")


def test_causal_square(sub) -> None:
    _check(sub, *_inputs(2, 3, 9, 9, 8, 0), causal=True)


def test_non_causal_rectangular(sub) -> None:
    _check(sub, *_inputs(1, 2, 5, 11, 4, 1), causal=False)


def test_causal_queries_at_the_end_of_the_keys(sub) -> None:
    _check(sub, *_inputs(2, 2, 4, 10, 8, 2), causal=True)


def test_custom_scale(sub) -> None:
    _check(sub, *_inputs(1, 1, 6, 6, 4, 3), causal=True, scale=0.9)


def test_single_query(sub) -> None:
    _check(sub, *_inputs(1, 2, 1, 7, 4, 4), causal=True)
    q, k, v, grad_out = _inputs(1, 1, 1, 1, 3, 5)  # one key: P = 1, so dq = dk = 0 and dv = grad_out
    dq, dk, dv = sub.attention_backward(q, k, v, grad_out, causal=True)
    torch.testing.assert_close(dv, grad_out)
    torch.testing.assert_close(dq, torch.zeros_like(q))
    torch.testing.assert_close(dk, torch.zeros_like(k))


def test_masked_future_gets_no_gradient(sub) -> None:
    q, k, v, grad_out = _inputs(1, 1, 6, 6, 4, 6)
    grad_out[:, :, 3:] = 0  # only queries 0..2 matter, so keys and values 3..5 get nothing
    _, dk, dv = sub.attention_backward(q, k, v, grad_out, causal=True)
    assert torch.all(dk[:, :, 3:] == 0) and torch.all(dv[:, :, 3:] == 0)


def test_float32(sub) -> None:
    q, k, v, grad_out = _inputs(1, 2, 7, 7, 8, 7, dtype=torch.float32)
    got = sub.attention_backward(q, k, v, grad_out, causal=True)
    want = _reference(q.double(), k.double(), v.double(), grad_out.double(), True)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == torch.float32
        torch.testing.assert_close(g.double(), w, rtol=1e-4, atol=1e-5)
