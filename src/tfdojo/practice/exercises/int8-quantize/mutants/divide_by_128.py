"""Mutant: scale = max / 128 (the int8 range's other end), so the largest entry clips to 127."""

import torch
from torch import Tensor


def quantize_int8(w: Tensor) -> tuple[Tensor, Tensor]:
    """Scale too small by 127/128."""
    amax = w.float().abs().amax(dim=1, keepdim=True)
    scale = torch.where(amax > 0, amax / 128, torch.ones_like(amax))
    return torch.round(w.float() / scale).clamp(-127, 127).to(torch.int8), scale


def dequantize_int8(q: Tensor, scale: Tensor) -> Tensor:
    """Correct."""
    return q.float() * scale


def int8_linear(x: Tensor, q: Tensor, scale: Tensor) -> Tensor:
    """Correct."""
    return (x @ q.to(x.dtype).T) * scale.to(x.dtype).T
