"""Rotary position embedding (Su et al., 2021, "RoFormer").

Each pair of channels (i, i + D/2) of a query or key at position p is rotated by the angle p·θ_i with
θ_i = base^(-2i/D), so that q_m · k_n depends on m - n only. We use the "rotate half" pairing of HF
transformers; llama.cpp's interleaved pairing is undone when its weights are loaded.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def inverse_frequencies(head_dim: int, base: float) -> Tensor:
    """θ_i = base^(-2i/D) for i in [0, D/2), in fp32."""
    return 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.int64).float() / head_dim))


def rotate_half(x: Tensor) -> Tensor:
    """(x₁, x₂) -> (-x₂, x₁) on the two halves of the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate x (B, H, T, D) by per-position angles; cos/sin are (B|1, T, D)."""
    cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # (B|1, 1, T, D): shared by every head
    return x * cos + rotate_half(x) * sin


class RotaryEmbedding(nn.Module):
    """Computes cos/sin tables for the given positions: positions (B|1, T) -> two (B|1, T, D) tensors."""

    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        self.register_buffer("inv_freq", inverse_frequencies(head_dim, base), persistent=False)

    def forward(self, positions: Tensor, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
        angles = positions.float().unsqueeze(-1) * self.inv_freq  # (B|1, T, D/2)
        angles = torch.cat((angles, angles), dim=-1)  # (B|1, T, D)
        return angles.cos().to(dtype), angles.sin().to(dtype)
