"""Hidden tests for Linformer: tfdojo's linformer backend (fp64) and plain attention when E = F = I."""

import torch

from tfdojo.nn.attention import eager_attention
from tfdojo.nn.backends.linformer import LinformerProjection, linformer_attention


def _inputs(b: int, h: int, t: int, s: int, d: int, p: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(b, h, t, d, generator=g, dtype=torch.float64)
    k, v = (torch.randn(b, h, s, d, generator=g, dtype=torch.float64) for _ in range(2))
    e, f = (torch.randn(p, s, generator=g, dtype=torch.float64) / p**0.5 for _ in range(2))
    return q, k, v, e, f


def _reference(q, k, v, e, f, mask=None, scale=None):
    projection = LinformerProjection(e.shape[1], e.shape[0]).double()
    with torch.no_grad():
        projection.e.copy_(e)
        projection.f.copy_(f)
    padding = None if mask is None else mask[:, None, None, :]
    return linformer_attention(q, k, v, mask=padding, scale=scale, projection=projection)


def test_matches_reference(sub) -> None:
    q, k, v, e, f = _inputs(2, 3, 9, 16, 8, 4, 0)
    torch.testing.assert_close(sub.linformer_attention(q, k, v, e, f), _reference(q, k, v, e, f))


def test_custom_scale(sub) -> None:
    q, k, v, e, f = _inputs(1, 2, 5, 7, 4, 3, 1)
    got = sub.linformer_attention(q, k, v, e, f, scale=0.9)
    torch.testing.assert_close(got, _reference(q, k, v, e, f, scale=0.9))


def test_identity_projection_is_full_attention(sub) -> None:
    q, k, v, _, _ = _inputs(1, 2, 6, 10, 8, 10, 2)
    eye = torch.eye(10, dtype=torch.float64)
    torch.testing.assert_close(sub.linformer_attention(q, k, v, eye, eye), eager_attention(q, k, v))


def test_keys_and_values_use_their_own_projection(sub) -> None:
    q, k, v, e, _ = _inputs(1, 1, 4, 6, 4, 6, 3)
    eye = torch.eye(6, dtype=torch.float64)
    reversed_rows = eye.flip(0)  # F permutes the values; E = I leaves the keys in place
    expected = eager_attention(q, k, v.flip(2))
    torch.testing.assert_close(sub.linformer_attention(q, k, v, eye, reversed_rows), expected)


def test_padded_keys_are_ignored(sub) -> None:
    q, k, v, e, f = _inputs(2, 2, 5, 12, 8, 4, 4)
    mask = torch.ones(2, 12, dtype=torch.bool)
    mask[0, 9:] = False
    mask[1, 4:] = False
    got = sub.linformer_attention(q, k, v, e, f, key_padding=mask)
    torch.testing.assert_close(got, _reference(q, k, v, e, f, mask))
    k2, v2 = k.clone(), v.clone()
    k2[0, :, 9:] = 1e3  # garbage in padded slots changes nothing
    v2[1, :, 4:] = -7.0
    torch.testing.assert_close(sub.linformer_attention(q, k2, v2, e, f, key_padding=mask), got)


def test_gradients_match(sub) -> None:
    q, k, v, e, f = _inputs(1, 2, 4, 8, 4, 3, 5)
    weight = torch.randn(1, 2, 4, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    grads = []
    for fn in (sub.linformer_attention, _reference_with_grad):
        leaves = [x.clone().requires_grad_() for x in (q, k, v, e, f)]
        (fn(*leaves) * weight).sum().backward()
        grads.append([x.grad for x in leaves])
    for mine, ref in zip(*grads, strict=True):
        torch.testing.assert_close(mine, ref)


def _reference_with_grad(q, k, v, e, f):
    k_proj = torch.einsum("ps,bhsd->bhpd", e, k)
    v_proj = torch.einsum("ps,bhsd->bhpd", f, v)
    return eager_attention(q, k_proj, v_proj)


def test_float32_in_float32_out(sub) -> None:
    q, k, v, e, f = (x.float() for x in _inputs(1, 1, 3, 5, 4, 2, 7))
    out = sub.linformer_attention(q, k, v, e, f)
    assert out.dtype == torch.float32 and out.shape == (1, 1, 3, 4)
