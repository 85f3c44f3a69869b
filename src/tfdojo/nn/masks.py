"""Attention masks. Convention: boolean masks are *keep* masks (True = may attend), broadcastable to (B, H, T, S)."""

from __future__ import annotations

import torch
from torch import Tensor


def causal_mask(t: int, s: int, device: torch.device | None = None) -> Tensor:
    """Boolean (T, S) mask, True where query i (at key position S - T + i) may see key j ≤ its position."""
    q_pos = torch.arange(s - t, s, device=device).unsqueeze(1)  # (T, 1)
    k_pos = torch.arange(s, device=device).unsqueeze(0)  # (1, S)
    return k_pos <= q_pos


def as_additive(mask: Tensor, dtype: torch.dtype) -> Tensor:
    """Turn a boolean keep-mask into an additive bias (0 where kept, the dtype's minimum where masked)."""
    if mask.dtype != torch.bool:
        return mask.to(dtype)
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, torch.finfo(dtype).min)


def merge_masks(causal: bool, mask: Tensor | None, t: int, s: int, device: torch.device) -> Tensor | None:
    """One boolean-or-additive mask from a causal flag and an optional user mask (None if nothing is masked)."""
    if not causal or t == 1:  # a single query at the end sees every key: the causal mask is all True
        return mask
    keep = causal_mask(t, s, device)
    if mask is None:
        return keep
    if mask.dtype == torch.bool:
        return mask & keep
    return mask.masked_fill(~keep, torch.finfo(mask.dtype).min)


def key_padding_mask(attention_mask: Tensor) -> Tensor:
    """(B, S) 1/0 or bool, 1 = real token -> (B, 1, 1, S) keep-mask that hides padded keys."""
    return attention_mask.bool()[:, None, None, :]
