"""Linear attention (elu + 1 and Performer features), causal and not, against its explicit O(N²) formula in fp64."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from tfdojo.errors import ConfigError
from tfdojo.nn.attention import scaled_dot_product
from tfdojo.nn.backends.linear import PerformerFeatures


def _quadratic(phi_q: Tensor, phi_k: Tensor, v: Tensor, causal: bool) -> Tensor:
    """out_i = Σ_j w_ij v_j / Σ_j w_ij with w_ij = φ(q_i)·φ(k_j), over keys j ≤ i's position when causal."""
    groups = phi_q.shape[1] // phi_k.shape[1]
    phi_k, v = phi_k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)  # (B, Hq, S, ·)
    weights = phi_q @ phi_k.transpose(-1, -2)  # (B, Hq, T, S): the whole O(N²) matrix
    t, s = weights.shape[-2:]
    if causal:
        visible = torch.tensor([[j <= s - t + i for j in range(s)] for i in range(t)])
        weights = weights * visible
    return (weights @ v) / weights.sum(-1, keepdim=True)


def _qkv(b: int, hq: int, hkv: int, t: int, s: int, d: int = 8) -> tuple[Tensor, Tensor, Tensor]:
    gen = torch.Generator().manual_seed(0)
    return (
        torch.randn(b, hq, t, d, generator=gen, dtype=torch.float64),
        torch.randn(b, hkv, s, d, generator=gen, dtype=torch.float64),
        torch.randn(b, hkv, s, d, generator=gen, dtype=torch.float64),
    )


SHAPES = [(2, 4, 4, 50, 50), (1, 6, 2, 37, 37), (2, 4, 1, 9, 30)]  # MHA, GQA with a ragged last chunk, decode


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_elu_linear_attention_equals_the_quadratic_form(shape: tuple, causal: bool) -> None:
    q, k, v = _qkv(*shape)
    out = scaled_dot_product(q, k, v, causal=causal, backend="linear", chunk=16)
    torch.testing.assert_close(out, _quadratic(F.elu(q) + 1, F.elu(k) + 1, v, causal), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("shape", SHAPES)
def test_performer_linear_attention_equals_the_quadratic_form(shape: tuple, causal: bool) -> None:
    q, k, v = _qkv(*shape)
    features = PerformerFeatures(head_dim=8, n_features=24, seed=3).double()
    out = scaled_dot_product(q, k, v, causal=causal, backend="linear", feature_map=features, chunk=16)
    d = q.shape[-1]
    omega = features.omega

    def phi(x: Tensor) -> Tensor:  # the paper's positive features, without any stabilising shift
        x = x / d**0.25
        return torch.exp(x @ omega.T - (x * x).sum(-1, keepdim=True) / 2) / math.sqrt(omega.shape[0])

    torch.testing.assert_close(out, _quadratic(phi(q), phi(k), v, causal), rtol=1e-9, atol=1e-12)


def test_performer_kernel_estimates_the_softmax_kernel() -> None:
    """E[φ(q)·φ(k)] = exp(q·k/√d), error shrinking like 1/√F (Choromanski et al., 2021, Lemma 1 and §4).

    With 32768 features the mean relative error is about 1%; rotations that are not uniformly random (a QR
    without its sign fix) stall near 5% however many features are drawn.
    """
    gen = torch.Generator().manual_seed(0)
    q, k = (0.5 * torch.randn(64, 16, generator=gen, dtype=torch.float64) for _ in range(2))
    omega = PerformerFeatures(head_dim=16, n_features=32768, seed=0).double().omega

    def phi(x: Tensor) -> Tensor:
        x = x / 2  # d^(-1/4) with d = 16
        return torch.exp(x @ omega.T - (x * x).sum(-1, keepdim=True) / 2) / math.sqrt(omega.shape[0])

    ratio = (phi(q) @ phi(k).T) / torch.exp(q @ k.T / 4)
    assert abs(ratio.mean() - 1) < 0.01
    assert (ratio - 1).abs().mean() < 0.025


def test_performer_seed_fixes_the_features_and_redraw_changes_them() -> None:
    a, b = PerformerFeatures(8, 16, seed=1), PerformerFeatures(8, 16, seed=1)
    torch.testing.assert_close(a.omega, b.omega)
    b.redraw(seed=2)
    assert not torch.allclose(a.omega, b.omega)
    gram = a.omega[:8] @ a.omega[:8].T  # the first block of rows is mutually orthogonal
    torch.testing.assert_close(gram - torch.diag(gram.diag()), torch.zeros(8, 8), rtol=0, atol=1e-5)


def test_padded_keys_contribute_nothing() -> None:
    q, k, v = _qkv(1, 2, 2, 10, 10)
    real = torch.ones(1, 10, dtype=torch.bool)
    real[0, 6:] = False
    out = scaled_dot_product(q, k, v, mask=real[:, None, None, :], backend="linear")
    expected = scaled_dot_product(q, k[:, :, :6], v[:, :, :6], backend="linear")
    torch.testing.assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_unsupported_options_are_config_errors() -> None:
    q, k, v = _qkv(1, 2, 2, 4, 4)
    with pytest.raises(ConfigError, match="scale"):
        scaled_dot_product(q, k, v, scale=0.5, backend="linear")
    with pytest.raises(ConfigError, match="feature map"):
        scaled_dot_product(q, k, v, backend="linear", feature_map="relu")
    with pytest.raises(ConfigError, match="key-padding"):
        scaled_dot_product(q, k, v, mask=torch.ones(4, 4, dtype=torch.bool), backend="linear")
