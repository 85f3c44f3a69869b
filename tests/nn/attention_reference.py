"""An fp64 attention written from the definitions, position by position: the oracle the attention tests share."""

from __future__ import annotations

import math

import torch
from torch import Tensor


def allowed(t: int, s: int, *, causal: bool = False, window: int | None = None) -> Tensor:
    """(T, S) bool from the rule itself: query i sits at key position s - t + i; causal hides later keys;
    a window hides keys W or more positions away."""
    rows = []
    for i in range(t):
        pos = s - t + i
        rows.append([(not causal or j <= pos) and (window is None or abs(pos - j) < window) for j in range(s)])
    return torch.tensor(rows, dtype=torch.bool)


def reference_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    *,
    causal: bool = False,
    window: int | None = None,
    slopes: Tensor | None = None,
    keep: Tensor | None = None,
) -> Tensor:
    """softmax(q kᵀ/√d + ALiBi, masked) v in fp64; k/v heads repeated for GQA; ``keep`` broadcasts to (B, H, T, S)."""
    q, k, v = q.double(), k.double(), v.double()
    groups = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)  # (B, Hq, S, D)
    t, s = q.shape[2], k.shape[2]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])  # (B, Hq, T, S)
    if slopes is not None:
        distance = torch.tensor([[abs(s - t + i - j) for j in range(s)] for i in range(t)], dtype=torch.float64)
        scores = scores - slopes.double().view(-1, 1, 1) * distance
    mask = allowed(t, s, causal=causal, window=window)
    if keep is not None:
        mask = mask & keep
    scores = scores.masked_fill(~mask, -math.inf)
    return torch.softmax(scores, dim=-1) @ v
