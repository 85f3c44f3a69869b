"""Mutant: ignored targets add zero but are still counted in the mean's denominator."""

import torch
from torch import Tensor


def next_token_loss(logits: Tensor, tokens: Tensor, ignore_index: int = -100) -> Tensor:
    """Divides by B·(T-1) instead of the number of counted targets."""
    scores = logits[:, :-1].float()
    targets = tokens[:, 1:]
    counted = targets != ignore_index
    picked = scores.gather(-1, targets.masked_fill(~counted, 0).unsqueeze(-1)).squeeze(-1)
    nll = torch.logsumexp(scores, dim=-1) - picked
    return (nll * counted).sum() / max(targets.numel(), 1)
