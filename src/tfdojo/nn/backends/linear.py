"""Linear attention: softmax's exp(q·k) replaced by a kernel φ(q)·φ(k), so attention costs O(T) not O(T²).

Katharopoulos et al. (2020), "Transformers are RNNs": with a feature map φ,

    out_i = Σ_j φ(q_i)·φ(k_j) v_j / Σ_j φ(q_i)·φ(k_j) = φ(q_i) (Σ_j φ(k_j) v_jᵀ) / φ(q_i) · (Σ_j φ(k_j))

and the two sums are computed once (non-causal) or as running sums over the keys up to i (causal). Causal
sums run chunk by chunk: inside a chunk of C positions the masked quadratic form is used, between chunks an
exclusive cumulative sum of per-chunk states carries the past — no Python loop over tokens, O(T·F·D / C) state.

Feature maps: ``"elu"`` is elu(x) + 1 (Katharopoulos et al.); :class:`PerformerFeatures` are FAVOR+ positive
orthogonal random features whose dot product is an unbiased estimate of exp(q·k/√d), the softmax kernel
(Choromanski et al., 2021, "Rethinking Attention with Performers").
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tfdojo.errors import ConfigError
from tfdojo.nn.attention import check_shapes, register_backend
from tfdojo.nn.masks import check_key_padding

FeatureMap = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]


def elu_features(q: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
    """φ(x) = elu(x) + 1, positive so every denominator is positive (Katharopoulos et al., 2020)."""
    return F.elu(q) + 1, F.elu(k) + 1


def orthogonal_gaussian(n_features: int, dim: int, generator: torch.Generator) -> Tensor:
    """(F, D) rows that are orthogonal within each block of D, with Gaussian-distributed norms (FAVOR+)."""
    blocks = []
    for _ in range(math.ceil(n_features / dim)):
        square = torch.randn(dim, dim, generator=generator, dtype=torch.float64)
        basis, upper = torch.linalg.qr(square)  # (D, D) orthonormal columns
        basis = basis * upper.diagonal().sign()  # fix QR's sign convention so the rotation is uniform (Haar)
        blocks.append(basis.T)
    directions = torch.cat(blocks)[:n_features]  # (F, D) unit rows
    norms = torch.randn(n_features, dim, generator=generator, dtype=torch.float64).norm(dim=1, keepdim=True)
    return directions * norms


class PerformerFeatures(nn.Module):
    """FAVOR+ features φ(x) = exp(ω·x - |x|²/2) / √F, x = input · d^(-1/4), ω orthogonal Gaussian rows.

    E[φ(q)·φ(k)] = exp(q·k / √d). The random matrix is a buffer drawn from ``seed``; :meth:`redraw` draws a
    fresh one (the paper redraws periodically during training).
    """

    def __init__(self, head_dim: int, n_features: int = 256, *, seed: int = 0) -> None:
        super().__init__()
        if head_dim < 1 or n_features < 1:
            raise ConfigError(f"Performer needs head_dim ≥ 1 and n_features ≥ 1; got {head_dim}, {n_features}")
        self.head_dim, self.n_features = head_dim, n_features
        self.register_buffer("omega", torch.empty(n_features, head_dim), persistent=True)
        self.redraw(seed)

    def redraw(self, seed: int) -> None:
        """Replace the random projection with one drawn from ``seed``."""
        generator = torch.Generator().manual_seed(seed)
        self.omega.copy_(orthogonal_gaussian(self.n_features, self.head_dim, generator))

    def _features(self, x: Tensor, stabiliser: Tensor) -> Tensor:
        x = x * self.head_dim**-0.25
        logits = x @ self.omega.to(x.dtype).T - x.pow(2).sum(-1, keepdim=True) / 2  # (..., F)
        return torch.exp(logits - stabiliser(logits)) / math.sqrt(self.n_features)

    def forward(self, q: Tensor, k: Tensor) -> tuple[Tensor, Tensor]:
        """φ(q), φ(k); each query row and all keys together are shifted by a max that cancels in the ratio."""
        phi_q = self._features(q, lambda z: z.amax(-1, keepdim=True).detach())
        phi_k = self._features(k, lambda z: z.amax((-2, -1), keepdim=True).detach())  # one shift for all keys
        return phi_q, phi_k


def _key_weights(mask: Tensor | None, b: int, s: int) -> Tensor | None:
    """A (B, 1, 1, S) boolean key-padding mask as (B, 1, S, 1) weights; any other mask is refused."""
    check_key_padding(mask, "linear")
    return None if mask is None else mask.expand(b, 1, 1, s).transpose(-1, -2)  # (B, 1, S, 1)


def _causal_sums(phi_q: Tensor, phi_k: Tensor, v: Tensor, chunk: int) -> tuple[Tensor, Tensor]:
    """Numerator (B, Hkv, G, T, D) and denominator (B, Hkv, G, T) of causal linear attention over T == S keys."""
    b, hkv, g, t, f = phi_q.shape
    d = v.shape[-1]
    n = math.ceil(t / chunk)
    pad = n * chunk - t  # trailing zero features: padded keys add nothing, padded queries are dropped
    pq = F.pad(phi_q, (0, 0, 0, pad)).view(b, hkv, g, n, chunk, f)  # (B, Hkv, G, n, C, F)
    pk = F.pad(phi_k, (0, 0, 0, pad)).view(b, hkv, n, chunk, f)  # (B, Hkv, n, C, F)
    pv = F.pad(v, (0, 0, 0, pad)).view(b, hkv, n, chunk, d)  # (B, Hkv, n, C, D)
    state = torch.einsum("bhncf,bhncd->bhnfd", pk, pv)  # (B, Hkv, n, F, D): each chunk's Σ φ(k) vᵀ
    norm = pk.sum(3)  # (B, Hkv, n, F): each chunk's Σ φ(k)
    past_state = state.cumsum(2) - state  # exclusive running sums: the chunks strictly before
    past_norm = norm.cumsum(2) - norm
    within = torch.einsum("bhgncf,bhnef->bhgnce", pq, pk).tril()  # (B, Hkv, G, n, C, C): key ≤ query
    num = torch.einsum("bhgncf,bhnfd->bhgncd", pq, past_state) + torch.einsum("bhgnce,bhned->bhgncd", within, pv)
    den = torch.einsum("bhgncf,bhnf->bhgnc", pq, past_norm) + within.sum(-1)
    num = num.reshape(b, hkv, g, n * chunk, d)[:, :, :, :t]  # (B, Hkv, G, T, D)
    return num, den.reshape(b, hkv, g, n * chunk)[:, :, :, :t]


@register_backend("linear")
def linear_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    mask: Tensor | None = None,
    scale: float | None = None,
    feature_map: str | FeatureMap = "elu",
    chunk: int = 128,
) -> Tensor:
    """Kernelised attention φ(Q)(φ(K)ᵀV) in O(T) time and memory; causal by chunked running sums."""
    groups = check_shapes(q, k, v)
    if scale is not None:
        raise ConfigError("linear attention has no softmax temperature; leave scale=None (fold it into φ)")
    if chunk < 1:
        raise ConfigError(f"chunk must be a positive number of positions, got {chunk}")
    if feature_map == "elu":
        feature_map = elu_features
    elif isinstance(feature_map, str):
        raise ConfigError(f"unknown feature map {feature_map!r}; pass 'elu' or a module such as PerformerFeatures")
    b, hq, t, d = q.shape
    hkv, s = k.shape[1], k.shape[2]
    phi_q, phi_k = feature_map(q.reshape(b, hkv, groups, t, d), k)  # (B, Hkv, G, T, F), (B, Hkv, S, F)
    weights = _key_weights(mask, b, s)
    if weights is not None:
        phi_k = phi_k * weights  # a padded key contributes to neither sum
    if not causal:
        state = torch.einsum("bhsf,bhsd->bhfd", phi_k, v)  # (B, Hkv, F, D)
        num = torch.einsum("bhgtf,bhfd->bhgtd", phi_q, state)
        den = torch.einsum("bhgtf,bhf->bhgt", phi_q, phi_k.sum(2))
    else:
        if t > s:
            raise ConfigError(f"causal attention needs at least as many keys as queries; got T={t}, S={s}")
        prefix = s - t  # keys before the first query: every query sees all of them
        num, den = _causal_sums(phi_q, phi_k[:, :, prefix:], v[:, :, prefix:], chunk)
        num = num + torch.einsum("bhgtf,bhsf,bhsd->bhgtd", phi_q, phi_k[:, :, :prefix], v[:, :, :prefix])
        den = den + torch.einsum("bhgtf,bhsf->bhgt", phi_q, phi_k[:, :, :prefix])
    out = num / den.clamp_min(torch.finfo(den.dtype).tiny).unsqueeze(-1)  # (B, Hkv, G, T, D)
    return out.reshape(b, hq, t, d)
