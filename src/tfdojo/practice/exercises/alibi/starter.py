import torch


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """Per-head slopes (n_heads,): 2^(-8h/n) for powers of two, the interleaving rule otherwise."""
    raise NotImplementedError


def alibi_bias(n_heads: int, t: int, s: int) -> torch.Tensor:
    """Additive bias (n_heads, t, s): -slope_h * |(s - t + i) - j|."""
    raise NotImplementedError
