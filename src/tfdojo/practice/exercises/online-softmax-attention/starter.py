"""Exact attention with an online softmax, visiting the keys tile by tile."""

from torch import Tensor


def online_softmax_attention(
    q: Tensor, k: Tensor, v: Tensor, *, causal: bool = False, block_k: int = 16, scale: float | None = None
) -> tuple[Tensor, Tensor]:
    """q (B, H, T, D), k/v (B, H, S, D) -> (out (B, H, T, D), lse (B, H, T)) with a running max and sum."""
    raise NotImplementedError
