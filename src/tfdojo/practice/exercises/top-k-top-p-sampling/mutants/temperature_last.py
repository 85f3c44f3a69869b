"""Mutant: filters run on the raw logits and the temperature is applied afterwards."""

import torch
from torch import Tensor


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Correct top-k."""
    k = min(k, logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Correct top-p."""
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = torch.softmax(sorted_logits.float(), dim=-1)
    drop_sorted = probs.cumsum(dim=-1) - probs >= p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def sample_next(logits, *, temperature, top_k=None, top_p=None, generator=None):
    """Wrong order: top-p sees the distribution before the temperature."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    filtered = logits.float()
    if top_k is not None:
        filtered = top_k_filter(filtered, top_k)
    if top_p is not None:
        filtered = top_p_filter(filtered, top_p)
    return torch.multinomial(torch.softmax(filtered / temperature, dim=-1), 1, generator=generator).squeeze(-1)
