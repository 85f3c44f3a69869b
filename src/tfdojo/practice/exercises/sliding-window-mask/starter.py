"""Sliding-window (Mistral) and local-band (Longformer) attention masks."""

from torch import Tensor


def sliding_window_mask(t: int, s: int, window: int, *, causal: bool = True) -> Tensor:
    """Boolean (T, S) keep-mask; queries are the last T of S positions; keys within `window` positions."""
    raise NotImplementedError


def sliding_window_attention(q: Tensor, k: Tensor, v: Tensor, window: int, *, causal: bool = True) -> Tensor:
    """q (B, H, T, D), k/v (B, H, S, D) -> (B, H, T, D): softmax attention restricted to the window."""
    raise NotImplementedError
