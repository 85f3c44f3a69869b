"""Linformer: softmax attention over keys and values projected along the sequence axis."""

import math

import torch
from torch import Tensor


def linformer_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    e: Tensor,
    f: Tensor,
    *,
    key_padding: Tensor | None = None,
    scale: float | None = None,
) -> Tensor:
    """q (B, H, T, D), k/v (B, H, S, D), e/f (P, S) -> softmax(Q (E K)ᵀ · scale) (F V), (B, H, T, D)."""
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    if key_padding is not None:
        keep = key_padding[:, None, :, None].to(k.dtype)  # (B, 1, S, 1)
        k, v = k * keep, v * keep  # padded positions contribute nothing to the projections
    k_proj = torch.einsum("ps,bhsd->bhpd", e.to(k.dtype), k)  # (B, H, P, D)
    v_proj = torch.einsum("ps,bhsd->bhpd", f.to(v.dtype), v)  # (B, H, P, D)
    work = torch.promote_types(q.dtype, torch.float32)
    scores = q.to(work) @ k_proj.to(work).transpose(-1, -2) * scale  # (B, H, T, P)
    return (torch.softmax(scores, dim=-1) @ v_proj.to(work)).to(q.dtype)
