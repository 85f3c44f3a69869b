import torch


def causal_mask(t: int, s: int) -> torch.Tensor:
    """Boolean (t, s) keep-mask: query i (at position s - t + i) may see key j when j <= s - t + i."""
    raise NotImplementedError


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last dim of scores (..., t, s); masked keys get 0, fully masked rows are all zeros."""
    raise NotImplementedError
