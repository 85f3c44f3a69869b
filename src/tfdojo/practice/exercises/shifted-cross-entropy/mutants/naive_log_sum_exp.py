"""Mutant: log(sum(exp(z))) without subtracting the maximum first, so large logits overflow."""

import torch
from torch import Tensor


def next_token_loss(logits: Tensor, tokens: Tensor, ignore_index: int = -100) -> Tensor:
    """Right shift and mask, unstable normaliser."""
    scores = logits[:, :-1].float()
    targets = tokens[:, 1:]
    counted = targets != ignore_index
    picked = scores.gather(-1, targets.masked_fill(~counted, 0).unsqueeze(-1)).squeeze(-1)
    nll = torch.log(torch.exp(scores).sum(-1)) - picked
    return (nll * counted).sum() / counted.sum().clamp_min(1)
