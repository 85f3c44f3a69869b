"""Linformer against its explicit formula softmax(Q Kᵀ Eᵀ / √d) F V, computed in the O(N²) order, in fp64."""

from __future__ import annotations

import math

import pytest
import torch

from tfdojo.errors import ConfigError
from tfdojo.nn.attention import scaled_dot_product
from tfdojo.nn.backends.linformer import LinformerProjection


@pytest.mark.parametrize("hq, hkv, s", [(4, 4, 32), (6, 2, 20)])
def test_linformer_equals_the_explicit_formula(hq: int, hkv: int, s: int) -> None:
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(2, hq, s, 8, generator=gen, dtype=torch.float64)
    k, v = (torch.randn(2, hkv, s, 8, generator=gen, dtype=torch.float64) for _ in range(2))
    projection = LinformerProjection(max_len=40, proj_len=6).double()
    out = scaled_dot_product(q, k, v, backend="linformer", projection=projection)

    e, f = projection.e[:, :s].detach(), projection.f[:, :s].detach()  # (k, S)
    k_full, v_full = k.repeat_interleave(hq // hkv, 1), v.repeat_interleave(hq // hkv, 1)  # (B, Hq, S, D)
    scores = (q @ k_full.transpose(-1, -2)) @ e.T / math.sqrt(8)  # (B, Hq, T, S) first, then (B, Hq, T, k)
    expected = torch.softmax(scores, -1) @ (f @ v_full)
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)


def test_projections_are_trainable_and_shareable() -> None:
    separate, shared = LinformerProjection(16, 4), LinformerProjection(16, 4, share_kv=True)
    assert sum(p.numel() for p in separate.parameters()) == 2 * 4 * 16
    assert sum(p.numel() for p in shared.parameters()) == 4 * 16
    q = torch.randn(1, 2, 16, 8, requires_grad=True)
    scaled_dot_product(q, q, q, backend="linformer", projection=separate).sum().backward()
    assert separate.e.grad is not None and separate.e.grad.abs().sum() > 0


def test_padded_keys_are_zeroed_before_projection() -> None:
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 2, 10, 4, generator=gen, dtype=torch.float64) for _ in range(3))
    projection = LinformerProjection(10, 3).double()
    real = torch.ones(1, 10, dtype=torch.bool)
    real[0, 7:] = False
    out = scaled_dot_product(q, k, v, mask=real[:, None, None, :], backend="linformer", projection=projection)
    k0, v0 = k.clone(), v.clone()
    k0[..., 7:, :], v0[..., 7:, :] = 0, 0
    torch.testing.assert_close(out, scaled_dot_product(q, k0, v0, backend="linformer", projection=projection))


def test_misuse_is_a_config_error() -> None:
    q = torch.randn(1, 2, 8, 4)
    projection = LinformerProjection(8, 2)
    with pytest.raises(ConfigError, match="projection="):
        scaled_dot_product(q, q, q, backend="linformer")
    with pytest.raises(ConfigError, match="causal"):
        scaled_dot_product(q, q, q, causal=True, backend="linformer", projection=projection)
    with pytest.raises(ConfigError, match="longer"):
        scaled_dot_product(
            torch.randn(1, 2, 9, 4), *(torch.randn(1, 2, 9, 4),) * 2, backend="linformer", projection=projection
        )
    with pytest.raises(ConfigError, match="proj_len"):
        LinformerProjection(8, 9)
