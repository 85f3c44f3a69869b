import torch


def causal_mask(t: int, s: int) -> torch.Tensor:
    """Boolean (t, s) keep-mask: query i (at position s - t + i) may see key j when j <= s - t + i."""
    query_pos = torch.arange(s - t, s).unsqueeze(1)  # (t, 1)
    key_pos = torch.arange(s).unsqueeze(0)  # (1, s)
    return key_pos <= query_pos


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim of scores (..., t, s); masked keys get 0, fully masked rows are all zeros."""
    filled = scores.masked_fill(~mask, float("-inf"))
    probs = torch.softmax(filled, dim=-1)
    return probs.nan_to_num(0.0)  # a row of -inf gives NaN: no key to attend to, so no weight at all
