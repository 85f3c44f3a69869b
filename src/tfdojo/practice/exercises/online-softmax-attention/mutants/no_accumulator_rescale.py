"""Mutant: the denominator is rescaled when the maximum grows, the accumulated output is not."""

import math

import torch
from torch import Tensor


def online_softmax_attention(
    q: Tensor, k: Tensor, v: Tensor, *, causal: bool = False, block_k: int = 16, scale: float | None = None
) -> tuple[Tensor, Tensor]:
    """Forgets acc · exp(m - m_new)."""
    b, h, t, d = q.shape
    s = k.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    q_pos = torch.arange(s - t, s)
    m = torch.full((b, h, t, 1), float("-inf"), dtype=q.dtype)
    l = torch.zeros(b, h, t, 1, dtype=q.dtype)
    acc = torch.zeros(b, h, t, d, dtype=q.dtype)
    for k0 in range(0, s, block_k):
        k1 = min(k0 + block_k, s)
        scores = q @ k[:, :, k0:k1].transpose(-1, -2) * scale
        if causal:
            scores = scores.masked_fill(~(torch.arange(k0, k1) <= q_pos[:, None]), float("-inf"))
        m_new = torch.maximum(m, scores.amax(-1, keepdim=True))
        p = torch.exp(scores - m_new)
        l = l * torch.exp(m - m_new) + p.sum(-1, keepdim=True)
        acc = acc + p @ v[:, :, k0:k1]
        m = m_new
    return acc / l, (m + torch.log(l)).squeeze(-1)
