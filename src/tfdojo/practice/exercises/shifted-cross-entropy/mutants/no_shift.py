"""Mutant: scores position t against token t (copying the input) instead of token t + 1."""

import torch
from torch import Tensor


def next_token_loss(logits: Tensor, tokens: Tensor, ignore_index: int = -100) -> Tensor:
    """No shift: every position is its own target."""
    scores = logits.float()
    counted = tokens != ignore_index
    picked = scores.gather(-1, tokens.masked_fill(~counted, 0).unsqueeze(-1)).squeeze(-1)
    nll = torch.logsumexp(scores, dim=-1) - picked
    return (nll * counted).sum() / counted.sum().clamp_min(1)
