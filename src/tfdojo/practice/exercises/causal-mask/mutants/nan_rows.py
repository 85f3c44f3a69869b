import torch


def causal_mask(t: int, s: int) -> torch.Tensor:
    query_pos = torch.arange(s - t, s).unsqueeze(1)
    key_pos = torch.arange(s).unsqueeze(0)
    return key_pos <= query_pos


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Forgets the fully masked row: softmax of all -inf is NaN."""
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
