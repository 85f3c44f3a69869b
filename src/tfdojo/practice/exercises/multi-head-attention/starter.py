import torch


def multi_head_attention(
    x: torch.Tensor,
    w_q: torch.Tensor,
    w_k: torch.Tensor,
    w_v: torch.Tensor,
    w_o: torch.Tensor,
    n_heads: int,
    causal: bool = False,
) -> torch.Tensor:
    """Self-attention of x (B, T, D) with n_heads heads; weights (D, D) applied as x @ w; returns (B, T, D)."""
    raise NotImplementedError
