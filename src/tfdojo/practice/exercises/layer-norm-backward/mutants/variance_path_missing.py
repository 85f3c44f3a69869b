"""Mutant: forgets that σ² depends on x (drops the x̂ · mean(g ⊙ x̂) term)."""

import torch
from torch import Tensor


def layer_norm_backward(
    x: Tensor, weight: Tensor, grad_out: Tensor, eps: float = 1e-5
) -> tuple[Tensor, Tensor, Tensor]:
    """x (..., D), weight (D,), grad_out (..., D) -> (dx (..., D), dweight (D,), dbias (D,))."""
    work = torch.promote_types(x.dtype, torch.float32)
    xw, w, dy = x.to(work), weight.to(work), grad_out.to(work)
    mu = xw.mean(-1, keepdim=True)
    rstd = torch.rsqrt((xw - mu).square().mean(-1, keepdim=True) + eps)  # 1 / √(σ² + ε)
    x_hat = (xw - mu) * rstd
    g = dy * w  # gradient reaching x̂
    dx = rstd * (g - g.mean(-1, keepdim=True))  # wrong: only the mean's path
    rows = dy.reshape(-1, dy.shape[-1])  # (N, D): every leading dimension is a row sharing w and b
    dweight = (rows * x_hat.reshape(rows.shape)).sum(0)
    dbias = rows.sum(0)
    return dx.to(x.dtype), dweight.to(weight.dtype), dbias.to(weight.dtype)
