"""Mutant: one scale for the whole matrix, broadcast to every row."""

import torch
from torch import Tensor


def quantize_int8(w: Tensor) -> tuple[Tensor, Tensor]:
    """The largest entry of the tensor sets every row's scale."""
    amax = w.float().abs().amax().clamp_min(1e-30)
    scale = (amax / 127).expand(w.shape[0], 1).clone()
    return torch.round(w.float() / scale).clamp(-127, 127).to(torch.int8), scale


def dequantize_int8(q: Tensor, scale: Tensor) -> Tensor:
    """Correct."""
    return q.float() * scale


def int8_linear(x: Tensor, q: Tensor, scale: Tensor) -> Tensor:
    """Correct."""
    return (x @ q.to(x.dtype).T) * scale.to(x.dtype).T
