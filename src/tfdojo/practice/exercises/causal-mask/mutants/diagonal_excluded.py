import torch


def causal_mask(t: int, s: int) -> torch.Tensor:
    """Off by one: a query may not see its own key."""
    query_pos = torch.arange(s - t, s).unsqueeze(1)
    key_pos = torch.arange(s).unsqueeze(0)
    return key_pos < query_pos


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    filled = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(filled, dim=-1).nan_to_num(0.0)
