"""Symmetric per-output-channel int8 quantization of a weight matrix, and a linear layer that uses it."""

import torch
from torch import Tensor


def quantize_int8(w: Tensor) -> tuple[Tensor, Tensor]:
    """w (out, in) -> q int8 (out, in), scale float32 (out, 1) with scale = max|row| / 127."""
    wf = w.float()
    amax = wf.abs().amax(dim=1, keepdim=True)  # (out, 1)
    scale = torch.where(amax > 0, amax / 127, torch.ones_like(amax))  # a zero row keeps scale 1
    q = torch.round(wf / scale).clamp(-127, 127).to(torch.int8)
    return q, scale


def dequantize_int8(q: Tensor, scale: Tensor) -> Tensor:
    """q int8 (out, in), scale (out, 1) -> float32 (out, in)."""
    return q.float() * scale


def int8_linear(x: Tensor, q: Tensor, scale: Tensor) -> Tensor:
    """x (..., in) -> (..., out) = (x @ qᵀ) · scaleᵀ, the scale applied to the output columns."""
    return (x @ q.to(x.dtype).T) * scale.to(x.dtype).T  # (..., out) * (1, out)
