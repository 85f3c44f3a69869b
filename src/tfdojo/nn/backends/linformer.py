"""Linformer: keys and values projected from length S down to k before softmax attention (Wang et al., 2020).

    out = softmax(Q (E K)ᵀ / √d) (F V),     E, F: (k, S) learned projections

The (T, S) score matrix becomes (T, k): linear in sequence length for a fixed k. The projections mix
positions, so a query cannot be kept from seeing the future: Linformer is for encoders (causal=False).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from tfdojo.errors import ConfigError
from tfdojo.nn.attention import check_shapes, eager_attention, register_backend
from tfdojo.nn.masks import check_key_padding


class LinformerProjection(nn.Module):
    """Learned E and F (k × max_len); a sequence of S ≤ max_len uses their first S columns."""

    def __init__(self, max_len: int, proj_len: int, *, share_kv: bool = False) -> None:
        super().__init__()
        if not 1 <= proj_len <= max_len:
            raise ConfigError(f"Linformer needs 1 ≤ proj_len ≤ max_len; got proj_len={proj_len}, max_len={max_len}")
        self.max_len, self.proj_len = max_len, proj_len
        std = 1.0 / math.sqrt(proj_len)  # keeps E·K at the scale of K (the paper draws N(0, 1/k))
        self.e = nn.Parameter(torch.randn(proj_len, max_len) * std)
        self.f = self.e if share_kv else nn.Parameter(torch.randn(proj_len, max_len) * std)

    def forward(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """(B, H, S, D) keys and values -> (B, H, k, D) projected keys and values."""
        s = k.shape[2]
        if s > self.max_len:
            raise ConfigError(f"sequence of {s} keys is longer than the Linformer projection ({self.max_len})")
        e, f = self.e[:, :s].to(k.dtype), self.f[:, :s].to(v.dtype)
        return torch.einsum("ks,bhsd->bhkd", e, k), torch.einsum("ks,bhsd->bhkd", f, v)


@register_backend("linformer")
def linformer_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    mask: Tensor | None = None,
    scale: float | None = None,
    projection: LinformerProjection | None = None,
) -> Tensor:
    """Softmax attention over k projected keys/values; padded keys (mask (B, 1, 1, S)) are zeroed first."""
    check_shapes(q, k, v)
    if projection is None:
        raise ConfigError("the linformer backend needs projection=LinformerProjection(max_len, proj_len)")
    if causal:
        raise ConfigError("Linformer's projections mix positions, so it cannot be causal; use it in an encoder")
    check_key_padding(mask, "linformer")
    if mask is not None:
        keep = mask.transpose(-1, -2).to(k.dtype)  # (B, 1, S, 1)
        k, v = k * keep, v * keep
    k_proj, v_proj = projection(k, v)  # (B, Hkv, k, D)
    return eager_attention(q, k_proj, v_proj, scale=scale)
