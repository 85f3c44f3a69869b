"""Hidden tests for linear attention: the explicit O(N²) kernel formula and tfdojo's linear backend."""

import torch
import torch.nn.functional as F

from tfdojo.nn.backends.linear import linear_attention as reference_linear


def _explicit(q, k, v, causal: bool) -> torch.Tensor:
    """out_i = Σ_j w_ij v_j / Σ_j w_ij, w_ij = φ(q_i)·φ(k_j), summed over j ≤ i when causal."""
    weights = (F.elu(q) + 1) @ (F.elu(k) + 1).transpose(-1, -2)  # (B, H, T, S)
    if causal:
        t = q.shape[2]
        weights = weights * (torch.arange(t)[None, :] <= torch.arange(t)[:, None])
    return (weights @ v) / weights.sum(-1, keepdim=True)


def _qkv(b: int, h: int, t: int, s: int, d: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(b, h, n, d, generator=g, dtype=torch.float64) for n in (t, s, s))


def test_feature_map(sub) -> None:
    x = torch.tensor([-30.0, -1.0, 0.0, 0.5, 3.0], dtype=torch.float64)
    expected = torch.tensor([torch.exp(torch.tensor(-30.0)).item(), 1 / torch.e, 1.0, 1.5, 4.0], dtype=torch.float64)
    torch.testing.assert_close(sub.elu_feature_map(x), expected)
    assert torch.all(sub.elu_feature_map(x) > 0)


def test_non_causal_matches_explicit_formula(sub) -> None:
    q, k, v = _qkv(2, 3, 7, 11, 8, 0)
    torch.testing.assert_close(sub.linear_attention(q, k, v), _explicit(q, k, v, causal=False))


def test_causal_matches_explicit_formula(sub) -> None:
    q, k, v = _qkv(2, 2, 13, 13, 4, 1)
    torch.testing.assert_close(sub.linear_attention(q, k, v, causal=True), _explicit(q, k, v, causal=True))


def test_causal_matches_tfdojo_backend(sub) -> None:
    q, k, v = _qkv(1, 2, 37, 37, 8, 2)
    torch.testing.assert_close(sub.linear_attention(q, k, v, causal=True), reference_linear(q, k, v, causal=True))


def test_first_causal_query_returns_its_own_value(sub) -> None:
    q, k, v = _qkv(1, 1, 5, 5, 3, 3)
    out = sub.linear_attention(q, k, v, causal=True)
    torch.testing.assert_close(out[:, :, 0], v[:, :, 0])


def test_single_token_and_float32(sub) -> None:
    q, k, v = (x.float() for x in _qkv(1, 1, 1, 1, 6, 4))
    out = sub.linear_attention(q, k, v, causal=True)
    assert out.dtype == torch.float32 and out.shape == (1, 1, 1, 6)
    torch.testing.assert_close(out, v)


def test_gradients_match_explicit(sub) -> None:
    q, k, v = _qkv(1, 2, 6, 6, 4, 5)
    weight = torch.randn(1, 2, 6, 4, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    grads = []
    for fn in (lambda a, b, c: sub.linear_attention(a, b, c, causal=True), lambda a, b, c: _explicit(a, b, c, True)):
        leaves = [x.clone().requires_grad_() for x in (q, k, v)]
        (fn(*leaves) * weight).sum().backward()
        grads.append([x.grad for x in leaves])
    for mine, ref in zip(*grads, strict=True):
        torch.testing.assert_close(mine, ref)
