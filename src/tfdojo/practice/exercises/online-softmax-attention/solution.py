"""Exact attention with an online softmax, visiting the keys tile by tile."""

import math

import torch
from torch import Tensor


def online_softmax_attention(
    q: Tensor, k: Tensor, v: Tensor, *, causal: bool = False, block_k: int = 16, scale: float | None = None
) -> tuple[Tensor, Tensor]:
    """q (B, H, T, D), k/v (B, H, S, D) -> (out (B, H, T, D), lse (B, H, T)) with a running max and sum."""
    b, h, t, d = q.shape
    s = k.shape[2]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    work = torch.promote_types(q.dtype, torch.float32)
    qw = q.to(work)
    q_pos = torch.arange(s - t, s, device=q.device)  # (T,) absolute position of each query
    m = torch.full((b, h, t, 1), float("-inf"), dtype=work, device=q.device)  # running max
    l = torch.zeros(b, h, t, 1, dtype=work, device=q.device)  # running denominator
    acc = torch.zeros(b, h, t, d, dtype=work, device=q.device)  # running unnormalised output
    for k0 in range(0, s, block_k):
        k1 = min(k0 + block_k, s)
        scores = qw @ k[:, :, k0:k1].to(work).transpose(-1, -2) * scale  # (B, H, T, block)
        if causal:
            visible = torch.arange(k0, k1, device=q.device) <= q_pos[:, None]  # (T, block)
            scores = scores.masked_fill(~visible, float("-inf"))
        m_new = torch.maximum(m, scores.amax(-1, keepdim=True))  # finite: key 0 is seen by every query
        correction = torch.exp(m - m_new)  # rescales what was summed against the old maximum
        p = torch.exp(scores - m_new)  # (B, H, T, block)
        l = l * correction + p.sum(-1, keepdim=True)
        acc = acc * correction + p @ v[:, :, k0:k1].to(work)
        m = m_new
    out = acc / l
    lse = (m + torch.log(l)).squeeze(-1)  # (B, H, T)
    return out.to(q.dtype), lse.to(q.dtype)
