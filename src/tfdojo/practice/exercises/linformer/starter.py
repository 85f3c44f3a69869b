"""Linformer: softmax attention over keys and values projected along the sequence axis."""

from torch import Tensor


def linformer_attention(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    e: Tensor,
    f: Tensor,
    *,
    key_padding: Tensor | None = None,
    scale: float | None = None,
) -> Tensor:
    """q (B, H, T, D), k/v (B, H, S, D), e/f (P, S) -> softmax(Q (E K)ᵀ · scale) (F V), (B, H, T, D)."""
    raise NotImplementedError
