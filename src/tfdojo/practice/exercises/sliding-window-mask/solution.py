"""Sliding-window (Mistral) and local-band (Longformer) attention masks."""

import math

import torch
from torch import Tensor


def sliding_window_mask(t: int, s: int, window: int, *, causal: bool = True) -> Tensor:
    """Boolean (T, S) keep-mask; queries are the last T of S positions; keys within `window` positions."""
    if window < 1:
        raise ValueError(f"window must be at least 1 (a query must see its own position), got {window}")
    q_pos = torch.arange(s - t, s).unsqueeze(1)  # (T, 1) absolute query positions
    k_pos = torch.arange(s).unsqueeze(0)  # (1, S)
    distance = q_pos - k_pos  # (T, S): how far back each key lies
    if causal:
        return (distance >= 0) & (distance < window)
    return distance.abs() < window


def sliding_window_attention(q: Tensor, k: Tensor, v: Tensor, window: int, *, causal: bool = True) -> Tensor:
    """q (B, H, T, D), k/v (B, H, S, D) -> (B, H, T, D): softmax attention restricted to the window."""
    t, d = q.shape[2], q.shape[3]
    s = k.shape[2]
    work = torch.promote_types(q.dtype, torch.float32)
    scores = q.to(work) @ k.to(work).transpose(-1, -2) / math.sqrt(d)  # (B, H, T, S)
    keep = sliding_window_mask(t, s, window, causal=causal).to(q.device)
    scores = scores.masked_fill(~keep, float("-inf"))
    return (torch.softmax(scores, dim=-1) @ v.to(work)).to(q.dtype)
