"""Top-k and top-p (nucleus) sampling over a batch of logits."""

import torch
from torch import Tensor


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """(B, V) logits -> same shape, -inf everywhere below the k-th largest logit of the row (ties kept)."""
    raise NotImplementedError


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """(B, V) logits -> same shape, keeping the smallest most-likely prefix whose probability reaches p."""
    raise NotImplementedError


def sample_next(
    logits: Tensor,
    *,
    temperature: float,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """(B, V) logits -> LongTensor (B,): argmax when temperature is 0, else temperature, top-k, top-p, draw."""
    raise NotImplementedError
