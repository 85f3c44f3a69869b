"""Mutant: casts to int8 without rounding, so every value is truncated toward zero."""

import torch
from torch import Tensor


def quantize_int8(w: Tensor) -> tuple[Tensor, Tensor]:
    """Truncation instead of round-to-nearest doubles the error bound."""
    amax = w.float().abs().amax(dim=1, keepdim=True)
    scale = torch.where(amax > 0, amax / 127, torch.ones_like(amax))
    return (w.float() / scale).clamp(-127, 127).to(torch.int8), scale


def dequantize_int8(q: Tensor, scale: Tensor) -> Tensor:
    """Correct."""
    return q.float() * scale


def int8_linear(x: Tensor, q: Tensor, scale: Tensor) -> Tensor:
    """Correct."""
    return (x @ q.to(x.dtype).T) * scale.to(x.dtype).T
