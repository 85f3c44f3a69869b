"""Absolute and bias-based positions: sinusoidal (Vaswani et al., 2017), learned (GPT-2, BERT) and ALiBi
(Press et al., 2022, "Train Short, Test Long"). Rotary embeddings live in ``tfdojo.nn.rope``.

    sinusoidal  x_p += PE[p],  PE[p, 2i] = sin(p / base^(2i/d)),  PE[p, 2i+1] = cos(p / base^(2i/d))
    learned     x_p += W[p],   W a trained (max_len, d) table
    ALiBi       scores[h, i, j] += m_h · (j - i): no embedding at all, a per-head linear penalty on distance

ALiBi's bias itself is added inside attention: pass ``alibi_slopes(n_heads)`` to ``scaled_dot_product``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from tfdojo.errors import ConfigError


def sinusoidal_table(n_positions: int, dim: int, base: float = 10000.0) -> Tensor:
    """(n_positions, dim) fp32 table with sin on even channels and cos on odd ones, as in the 2017 paper."""
    if dim % 2:
        raise ConfigError(f"sinusoidal positions pair sin and cos channels and need an even dim, got {dim}")
    positions = torch.arange(n_positions, dtype=torch.float64).unsqueeze(1)  # (N, 1)
    inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (d/2,)
    angles = positions * inv_freq  # (N, d/2)
    return torch.stack((angles.sin(), angles.cos()), dim=-1).flatten(1).float()  # (N, d/2, 2) -> (N, d)


class SinusoidalPositions(nn.Module):
    """positions (B|1, T) -> (B|1, T, dim) fixed encodings from a precomputed table (no parameters)."""

    def __init__(self, dim: int, max_len: int, base: float = 10000.0) -> None:
        super().__init__()
        self.register_buffer("table", sinusoidal_table(max_len, dim, base), persistent=False)

    def forward(self, positions: Tensor) -> Tensor:
        return self.table[positions]


class LearnedPositions(nn.Embedding):
    """positions (B|1, T) -> (B|1, T, dim): a trained table of ``max_len`` rows (``weight``, like nn.Embedding)."""

    def __init__(self, max_len: int, dim: int) -> None:
        super().__init__(max_len, dim)


def alibi_slopes(n_heads: int) -> Tensor:
    """Per-head ALiBi slopes (H,): 2^(-8h/n) for h = 1..n when n is a power of two (Press et al., 2022, §3).

    Otherwise take the slopes of the largest power of two m < n, then every other slope of 2m for the rest,
    which keeps the geometric spacing (the reference implementation's rule).
    """
    if n_heads <= 0:
        raise ConfigError(f"ALiBi needs a positive number of heads, got {n_heads}")

    def geometric(n: int) -> Tensor:
        return 2.0 ** (-8.0 * torch.arange(1, n + 1, dtype=torch.float64) / n)

    m = 2 ** math.floor(math.log2(n_heads))
    slopes = torch.cat((geometric(m), geometric(2 * m)[0::2][: n_heads - m]))
    return slopes.float()
