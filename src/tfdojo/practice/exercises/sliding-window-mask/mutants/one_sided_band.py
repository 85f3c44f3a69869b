"""Mutant: the non-causal band only looks back, like the causal window."""

import math

import torch
from torch import Tensor


def sliding_window_mask(t: int, s: int, window: int, *, causal: bool = True) -> Tensor:
    """Ignores causal=False."""
    if window < 1:
        raise ValueError("window must be at least 1")
    distance = torch.arange(s - t, s).unsqueeze(1) - torch.arange(s).unsqueeze(0)
    return (distance >= 0) & (distance < window)


def sliding_window_attention(q: Tensor, k: Tensor, v: Tensor, window: int, *, causal: bool = True) -> Tensor:
    """Attention with the mask above."""
    scores = q.double() @ k.double().transpose(-1, -2) / math.sqrt(q.shape[-1])
    keep = sliding_window_mask(q.shape[2], k.shape[2], window, causal=causal)
    return (torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=-1) @ v.double()).to(q.dtype)
