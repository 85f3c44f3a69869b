import torch


def causal_mask(t: int, s: int) -> torch.Tensor:
    """Forgets that queries are the LAST t positions: a plain lower triangle of the (t, s) rectangle."""
    return torch.ones(t, s, dtype=torch.bool).tril()


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    filled = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(filled, dim=-1).nan_to_num(0.0)
