"""Mutant: dk forgets the scale that multiplied the scores."""

import math

import torch
from torch import Tensor


def attention_backward(
    q: Tensor, k: Tensor, v: Tensor, grad_out: Tensor, *, causal: bool = True, scale: float | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """q (B, H, T, D), k/v (B, H, S, D), grad_out (B, H, T, D) -> (dq, dk, dv) of O = softmax(q kᵀ · scale) v."""
    t, s, d = q.shape[2], k.shape[2], q.shape[3]
    scale = 1.0 / math.sqrt(d) if scale is None else scale
    work = torch.promote_types(q.dtype, torch.float32)
    qw, kw, vw, do = (x.to(work) for x in (q, k, v, grad_out))
    scores = qw @ kw.transpose(-1, -2) * scale  # (B, H, T, S)
    if causal:
        keep = torch.arange(s, device=q.device) <= torch.arange(s - t, s, device=q.device)[:, None]  # (T, S)
        scores = scores.masked_fill(~keep, float("-inf"))
    p = torch.softmax(scores, dim=-1)  # (B, H, T, S)
    dv = p.transpose(-1, -2) @ do  # (B, H, S, D): O = P V
    dp = do @ vw.transpose(-1, -2)  # (B, H, T, S)
    ds = p * (dp - (dp * p).sum(-1, keepdim=True))  # softmax Jacobian, row by row
    dq = ds @ kw * scale  # (B, H, T, D): S = q kᵀ · scale
    dk = ds.transpose(-1, -2) @ qw  # wrong: no scale
    return dq.to(q.dtype), dk.to(k.dtype), dv.to(v.dtype)
